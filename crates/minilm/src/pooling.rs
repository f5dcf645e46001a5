//! Sentence-transformers' `Pooling(mean)` followed by `Normalize`.

use crate::forward::Hidden;

/// Mean of the token vectors `start .. start + len` of the feature-major
/// `hidden`, then L2 normalisation. Every token there is a real token (the
/// forward pass never materialises padding), so the attention-mask weighted
/// mean of sentence-transformers reduces to a plain mean. The norm is
/// clamped at 1e-12 like `torch.nn.functional.normalize`.
pub(crate) fn mean_pool_normalize(hidden: &Hidden, start: usize, len: usize) -> Vec<f32> {
    let inv_len = 1.0 / len.max(1) as f32;
    let mut out: Vec<f32> = hidden
        .data
        .chunks_exact(hidden.tokens.max(1))
        .map(|feature| feature[start..start + len].iter().sum::<f32>() * inv_len)
        .collect();
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    for o in out.iter_mut() {
        *o /= norm;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_and_normalises() {
        // Two features x three tokens; pool tokens 1..3: means (2, 2).
        let hidden = Hidden {
            data: vec![9.0, 1.0, 3.0, -9.0, 0.0, 4.0],
            tokens: 3,
        };
        let v = mean_pool_normalize(&hidden, 1, 2);
        assert!((v[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        assert!((v[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
    }

    #[test]
    fn zero_vector_stays_finite() {
        let hidden = Hidden {
            data: vec![0.0; 4],
            tokens: 1,
        };
        let v = mean_pool_normalize(&hidden, 0, 1);
        assert!(v.iter().all(|x| *x == 0.0));
    }
}
