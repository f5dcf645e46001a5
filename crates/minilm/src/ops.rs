//! Numeric kernels of the forward pass: matrix products through `gemm`
//! (always single-threaded) and the element-wise functions.
//!
//! The element-wise functions are written branch-free over plain slices so
//! the compiler vectorises them; `exp` and `erf` are polynomial/rational
//! approximations accurate to a few ulp instead of calls into libm. GELU
//! needs 1536 erf values per token per layer, and with libm's scalar `erff`
//! batched throughput was about a third lower than with the vectorised one.

use gemm::Parallelism;

/// Shape and element strides of a matrix view into a flat slice: element
/// `(r, c)` lives at `r * rs + c * cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl Layout {
    /// Each column contiguous: element `(r, c)` at `r + c * ld`.
    pub fn col_major(rows: usize, cols: usize, ld: usize) -> Self {
        Layout {
            rows,
            cols,
            rs: 1,
            cs: ld,
        }
    }

    /// Element `(r, c)` at `r * ld + c`.
    pub fn row_major(rows: usize, cols: usize, ld: usize) -> Self {
        Layout {
            rows,
            cols,
            rs: ld,
            cs: 1,
        }
    }

    /// Index of the last element plus one, or `None` on overflow.
    fn extent(&self) -> Option<usize> {
        if self.rows == 0 || self.cols == 0 {
            return Some(0);
        }
        (self.rows - 1)
            .checked_mul(self.rs)?
            .checked_add((self.cols - 1).checked_mul(self.cs)?)?
            .checked_add(1)
    }

    /// True if no two elements share an address (required of a destination).
    fn is_injective(&self) -> bool {
        self.rows <= 1
            || self.cols <= 1
            || (self.rs == 1 && self.cs >= self.rows)
            || (self.cs == 1 && self.rs >= self.cols)
    }
}

/// `c = (accumulate ? c : 0) + scale · a · b` for strided views, computed by
/// `gemm` on this thread only.
///
/// `gemm` runs fastest when the destination and `a` are column-major and `b`
/// has unit row stride, because then neither operand needs repacking; the
/// forward pass lays activations out feature-major for exactly that reason
/// (see `forward`). Panics if a view does not fit its slice or the shapes
/// disagree — shapes come from the validated config, so that would be a bug
/// in this crate, never bad input; the checks guard the unsafe call and stay
/// in release builds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    c: &mut [f32],
    cl: Layout,
    accumulate: bool,
    a: &[f32],
    al: Layout,
    b: &[f32],
    bl: Layout,
    scale: f32,
) {
    assert!(
        cl.rows == al.rows && al.cols == bl.rows && cl.cols == bl.cols,
        "gemm shapes disagree: {cl:?} = {al:?} x {bl:?}"
    );
    let fits = |l: &Layout, len: usize| l.extent().is_some_and(|e| e <= len);
    assert!(
        fits(&cl, c.len()) && cl.is_injective(),
        "gemm dst {cl:?} vs {}",
        c.len()
    );
    assert!(fits(&al, a.len()), "gemm lhs {al:?} vs {}", a.len());
    assert!(fits(&bl, b.len()), "gemm rhs {bl:?} vs {}", b.len());
    if cl.rows == 0 || cl.cols == 0 {
        return;
    }
    // SAFETY: every element gemm reads or writes is inside its slice (the
    // `fits` checks cover the largest index of each view), `c` is a unique
    // borrow so it aliases neither input, distinct destination elements have
    // distinct addresses (`is_injective`), and Parallelism::None keeps all
    // work on the calling thread.
    unsafe {
        gemm::gemm(
            cl.rows,
            cl.cols,
            al.cols,
            c.as_mut_ptr(),
            cl.cs as isize,
            cl.rs as isize,
            accumulate,
            a.as_ptr(),
            al.cs as isize,
            al.rs as isize,
            b.as_ptr(),
            bl.cs as isize,
            bl.rs as isize,
            // gemm computes dst = alpha·dst + beta·(lhs·rhs): alpha scales the
            // existing destination (ignored unless `accumulate`), beta the
            // product — the opposite naming of BLAS.
            1.0,
            scale,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Sets feature `f` of every token to `bias[f]` in a feature-major
/// `[features][tokens]` matrix, so a following accumulating gemm adds the
/// product onto the bias.
pub(crate) fn fill_bias(dst: &mut [f32], bias: &[f32]) {
    let t = dst.len() / bias.len();
    for (row, b) in dst.chunks_exact_mut(t).zip(bias) {
        row.fill(*b);
    }
}

/// `dst = src + bias` (bias per feature) for feature-major matrices:
/// prepares residual + bias so the following accumulating gemm completes
/// `x + W·y + b` without another pass.
pub(crate) fn add_bias(dst: &mut [f32], src: &[f32], bias: &[f32]) {
    let t = dst.len() / bias.len();
    for ((d, s), b) in dst.chunks_exact_mut(t).zip(src.chunks_exact(t)).zip(bias) {
        for (d, s) in d.iter_mut().zip(s) {
            *d = s + b;
        }
    }
}

/// In-place LayerNorm of every token of a feature-major `[features][tokens]`
/// matrix (`gamma.len()` features), with the biased variance PyTorch uses.
/// Statistics are accumulated feature by feature across all tokens at once,
/// so every loop runs over contiguous memory and vectorises; two passes
/// (mean, then centred squares) keep the variance accurate. `stats` is
/// scratch space of at least twice the token count.
pub(crate) fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32, stats: &mut [f32]) {
    let h = gamma.len();
    let t = x.len() / h;
    let (mean, inv_std) = stats[..2 * t].split_at_mut(t);
    let inv_h = 1.0 / h as f32;
    mean.fill(0.0);
    for row in x.chunks_exact(t) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in mean.iter_mut() {
        *m *= inv_h;
    }
    inv_std.fill(0.0);
    for row in x.chunks_exact(t) {
        for ((s, v), m) in inv_std.iter_mut().zip(row).zip(mean.iter()) {
            let d = v - m;
            *s += d * d;
        }
    }
    for s in inv_std.iter_mut() {
        *s = 1.0 / (*s * inv_h + eps).sqrt();
    }
    for ((row, g), b) in x.chunks_exact_mut(t).zip(gamma).zip(beta) {
        for ((v, m), s) in row.iter_mut().zip(mean.iter()).zip(inv_std.iter()) {
            *v = (*v - m) * s * g + b;
        }
    }
}

/// Sum with eight independent accumulators, so the loop vectorises (a
/// single running sum is a serial dependency the compiler may not reorder).
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// Exact (erf-based) GELU in place: `0.5·x·(1 + erf(x/√2))`, as BERT's
/// `hidden_act = "gelu"`; the tanh approximation would drift from PyTorch.
pub(crate) fn gelu(x: &mut [f32]) {
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * FRAC_1_SQRT_2));
    }
}

/// In-place softmax over each row of length `n`.
pub(crate) fn softmax_rows(x: &mut [f32], n: usize) {
    for row in x.chunks_exact_mut(n) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / sum(row);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// Error function, |error| < 5e-7 on all finite f32 (checked against f64 libm in
/// the tests). Rational approximation `x·P(x²)/Q(x²)` on [-4, 4], the same
/// form and coefficients Eigen and XLA use for f32; beyond ±4, erf rounds to
/// ±1 in f32.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add_fast(x2, 2.770_681_4e-8);
    p = p.mul_add_fast(x2, -2.101_024e-6);
    p = p.mul_add_fast(x2, -5.692_506_4e-5);
    p = p.mul_add_fast(x2, -7.349_906_3e-4);
    p = p.mul_add_fast(x2, -2.954_6e-3);
    p = p.mul_add_fast(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add_fast(x2, -2.133_740_6e-4);
    q = q.mul_add_fast(x2, -1.682_827e-3);
    q = q.mul_add_fast(x2, -7.373_329e-3);
    q = q.mul_add_fast(x2, -1.426_474e-2);
    x * p / q
}

/// `e^x` for f32, about 1 ulp on the range softmax uses (x ≤ 0), with the
/// Cephes `expf` reduction: x = n·ln2 + r, |r| ≤ ln2/2, e^r by a degree-6
/// polynomial, 2ⁿ assembled in the exponent bits. Inputs are clamped to
/// [-87, 88], so the result is never a denormal, NaN aside.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding and subtracting it rounds to the nearest integer
    // without a libm call, and leaves that integer in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add_fast(LOG2E, MAGIC);
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add_fast(r, 1.398_199_9e-3);
    p = p.mul_add_fast(r, 8.333_452e-3);
    p = p.mul_add_fast(r, 4.166_579_6e-2);
    p = p.mul_add_fast(r, 1.666_666_5e-1);
    p = p.mul_add_fast(r, 0.5);
    let er = (p * r).mul_add_fast(r, r) + 1.0;
    let bits = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let pow2n = f32::from_bits((bits.wrapping_add(127) as u32) << 23);
    er * pow2n
}

/// `a·b + c` written as a separate multiply and add. `f32::mul_add` would be
/// a libm call (no FMA in the baseline x86-64 target) and would not
/// vectorise; the rounding difference is far below the tolerances here.
trait MulAddFast {
    fn mul_add_fast(self, b: f32, c: f32) -> f32;
}

impl MulAddFast for f32 {
    #[inline(always)]
    fn mul_add_fast(self, b: f32, c: f32) -> f32 {
        self * b + c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_accurate() {
        let mut worst = 0.0f64;
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            let err = (erf(x) as f64 - libm::erf(x as f64)).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "worst erf error {worst}");
        assert!((erf(100.0) - 1.0).abs() <= 2e-7);
        assert!((erf(-100.0) + 1.0).abs() <= 2e-7);
        assert!(erf(f32::INFINITY).is_finite());
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst exp relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), exp(-87.0));
    }

    /// Naive `a·b` for arbitrary layouts.
    fn naive(a: &[f32], al: Layout, b: &[f32], bl: Layout) -> Vec<Vec<f32>> {
        (0..al.rows)
            .map(|i| {
                (0..bl.cols)
                    .map(|j| {
                        (0..al.cols)
                            .map(|t| a[i * al.rs + t * al.cs] * b[t * bl.rs + j * bl.cs])
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn gemm_matches_naive_for_all_layouts() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i as f32).sin()).collect();
        for al in [Layout::row_major(m, k, k), Layout::col_major(m, k, m)] {
            for bl in [Layout::row_major(k, n, n), Layout::col_major(k, n, k)] {
                for cl in [Layout::row_major(m, n, n), Layout::col_major(m, n, m)] {
                    let want = naive(&a, al, &b, bl);
                    let mut c = vec![1.0f32; m * n];
                    gemm(&mut c, cl, true, &a, al, &b, bl, 2.0);
                    for i in 0..m {
                        for j in 0..n {
                            let got = c[i * cl.rs + j * cl.cs];
                            assert!((got - (1.0 + 2.0 * want[i][j])).abs() < 1e-5);
                        }
                    }
                    gemm(&mut c, cl, false, &a, al, &b, bl, 1.0);
                    assert!((c[0] - want[0][0]).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm lhs")]
    fn gemm_rejects_views_outside_the_slice() {
        let mut c = vec![0.0; 4];
        gemm(
            &mut c,
            Layout::row_major(2, 2, 2),
            false,
            &[0.0; 3],
            Layout::row_major(2, 2, 2),
            &[0.0; 4],
            Layout::row_major(2, 2, 2),
            1.0,
        );
    }

    #[test]
    fn layer_norm_normalises_each_token() {
        // Feature-major: 4 features x 2 tokens; token 0 = 1,2,3,4, token 1 = 10s.
        let mut x = vec![1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 4.0, 10.0];
        let mut stats = vec![0.0; 4];
        layer_norm(&mut x, &[1.0; 4], &[0.0; 4], 1e-12, &mut stats);
        let tok0: Vec<f32> = x.iter().step_by(2).copied().collect();
        let m: f32 = tok0.iter().sum::<f32>() / 4.0;
        let v: f32 = tok0.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / 4.0;
        assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-5);
        assert!(x.iter().skip(1).step_by(2).all(|a| a.abs() < 1e-3));
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut x = vec![1.0, 2.0, 3.0, -1000.0, 0.0, 0.0];
        softmax_rows(&mut x, 3);
        assert!((x[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[3] < 1e-30 && (x[4] - 0.5).abs() < 1e-6);
    }
}
