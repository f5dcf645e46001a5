//! pgvector's on-disk `vector` layout and the small amount of vector arithmetic the
//! extension needs. Pure Rust: no pgrx, tested with plain `#[test]`s.
//!
//! A `vector` value is a varlena. After its 4-byte length header comes
//! `int16 dim`, `int16 unused` (always 0), then `dim` little-endian-in-memory `float4`s
//! (native byte order, since the value never leaves the machine). This module reads and
//! writes that payload: the bytes *after* the varlena header.

use thiserror::Error;

/// pgvector's own limit (`VECTOR_MAX_DIM`).
pub const VECTOR_MAX_DIM: usize = 16_000;
/// Bytes before the first element: `int16 dim` + `int16 unused`.
pub const PAYLOAD_HEADER: usize = 4;

#[derive(Debug, Error, PartialEq)]
pub enum VectorError {
    #[error("vector payload is {0} bytes, shorter than its 4-byte header")]
    TooShort(usize),
    #[error("vector declares {dim} dimensions, which is outside 1..={VECTOR_MAX_DIM}")]
    BadDimension { dim: i32 },
    #[error(
        "vector declares {dim} dimensions ({expected} payload bytes) but holds {actual} bytes"
    )]
    SizeMismatch {
        dim: usize,
        expected: usize,
        actual: usize,
    },
    #[error("vector header field `unused` is {0}, expected 0: not a pgvector vector")]
    UnusedNotZero(i16),
    #[error("vector element {index} is not finite")]
    NotFinite { index: usize },
    #[error("different vector dimensions {left} and {right}")]
    DimensionMismatch { left: usize, right: usize },
}

/// Reads the payload of a `vector` varlena (everything after the length header).
pub fn decode_payload(payload: &[u8]) -> Result<Vec<f32>, VectorError> {
    if payload.len() < PAYLOAD_HEADER {
        return Err(VectorError::TooShort(payload.len()));
    }
    let dim = i16::from_ne_bytes([payload[0], payload[1]]);
    let unused = i16::from_ne_bytes([payload[2], payload[3]]);
    if dim < 1 || dim as usize > VECTOR_MAX_DIM {
        return Err(VectorError::BadDimension { dim: dim as i32 });
    }
    let dim = dim as usize;
    let expected = PAYLOAD_HEADER + 4 * dim;
    if payload.len() != expected {
        return Err(VectorError::SizeMismatch {
            dim,
            expected,
            actual: payload.len(),
        });
    }
    if unused != 0 {
        return Err(VectorError::UnusedNotZero(unused));
    }
    let values: Vec<f32> = payload[PAYLOAD_HEADER..]
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(VectorError::NotFinite { index });
    }
    Ok(values)
}

/// Checks that `values` can be stored as a pgvector `vector`.
pub fn validate(values: &[f32]) -> Result<(), VectorError> {
    if values.is_empty() || values.len() > VECTOR_MAX_DIM {
        return Err(VectorError::BadDimension {
            dim: values.len() as i32,
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(VectorError::NotFinite { index });
    }
    Ok(())
}

/// Writes the payload of a `vector` varlena into `out`, which must be exactly
/// `payload_len(values.len())` bytes long.
pub fn encode_payload_into(values: &[f32], out: &mut [u8]) -> Result<(), VectorError> {
    validate(values)?;
    let expected = payload_len(values.len());
    if out.len() != expected {
        return Err(VectorError::SizeMismatch {
            dim: values.len(),
            expected,
            actual: out.len(),
        });
    }
    out[0..2].copy_from_slice(&(values.len() as i16).to_ne_bytes());
    out[2..4].copy_from_slice(&0i16.to_ne_bytes());
    for (chunk, v) in out[PAYLOAD_HEADER..].chunks_exact_mut(4).zip(values) {
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    Ok(())
}

pub fn payload_len(dim: usize) -> usize {
    PAYLOAD_HEADER + 4 * dim
}

/// Cosine similarity in f64, in [-1, 1]. `None` when either vector has zero length
/// (the angle is undefined), so callers can say "missing" instead of inventing a value.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<Option<f64>, VectorError> {
    if a.len() != b.len() {
        return Err(VectorError::DimensionMismatch {
            left: a.len(),
            right: b.len(),
        });
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return Ok(None);
    }
    Ok(Some((dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0)))
}

/// The vector scaled to unit L2 length; `None` for the zero vector.
pub fn l2_normalized(values: &[f32]) -> Option<Vec<f32>> {
    let norm = values
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    Some(values.iter().map(|&v| (v as f64 / norm) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(dim: i16, unused: i16, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&dim.to_ne_bytes());
        out.extend_from_slice(&unused.to_ne_bytes());
        for v in values {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        out
    }

    #[test]
    fn decodes_a_well_formed_payload() {
        let p = payload(3, 0, &[1.0, -2.5, 3.25]);
        assert_eq!(decode_payload(&p).unwrap(), vec![1.0, -2.5, 3.25]);
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let values = [0.5f32, 0.25, -8.0, 1e-7];
        let mut buf = vec![0u8; payload_len(values.len())];
        encode_payload_into(&values, &mut buf).unwrap();
        assert_eq!(buf, payload(4, 0, &values));
        assert_eq!(decode_payload(&buf).unwrap(), values.to_vec());
    }

    #[test]
    fn rejects_a_payload_shorter_than_its_header() {
        assert_eq!(decode_payload(&[1, 0]), Err(VectorError::TooShort(2)));
    }

    #[test]
    fn rejects_a_size_that_disagrees_with_dim() {
        let mut p = payload(3, 0, &[1.0, 2.0, 3.0]);
        p.truncate(p.len() - 4);
        assert_eq!(
            decode_payload(&p),
            Err(VectorError::SizeMismatch {
                dim: 3,
                expected: 16,
                actual: 12
            })
        );
    }

    #[test]
    fn rejects_non_zero_unused_field() {
        let p = payload(1, 7, &[1.0]);
        assert_eq!(decode_payload(&p), Err(VectorError::UnusedNotZero(7)));
    }

    #[test]
    fn rejects_zero_negative_and_oversized_dimensions() {
        assert!(matches!(
            decode_payload(&payload(0, 0, &[])),
            Err(VectorError::BadDimension { dim: 0 })
        ));
        assert!(matches!(
            decode_payload(&payload(-4, 0, &[])),
            Err(VectorError::BadDimension { dim: -4 })
        ));
        assert!(matches!(
            decode_payload(&payload(16_001, 0, &[])),
            Err(VectorError::BadDimension { dim: 16_001 })
        ));
    }

    #[test]
    fn rejects_nan_and_infinite_elements() {
        let p = payload(2, 0, &[1.0, f32::NAN]);
        assert_eq!(decode_payload(&p), Err(VectorError::NotFinite { index: 1 }));
        let mut buf = vec![0u8; payload_len(1)];
        assert_eq!(
            encode_payload_into(&[f32::INFINITY], &mut buf),
            Err(VectorError::NotFinite { index: 0 })
        );
    }

    #[test]
    fn cosine_of_parallel_orthogonal_and_opposite_vectors() {
        let cos = |a: &[f32], b: &[f32]| cosine_similarity(a, b).unwrap().unwrap();
        assert!((cos(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert_eq!(cos(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert!((cos(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-12);
        let expected = 11.0 / (5.0f64.sqrt() * 25.0f64.sqrt());
        assert!((cos(&[1.0, 2.0], &[3.0, 4.0]) - expected).abs() < 1e-12);
    }

    #[test]
    fn cosine_with_a_zero_vector_is_undefined_not_zero() {
        assert_eq!(cosine_similarity(&[0.0, 0.0], &[1.0, 0.0]).unwrap(), None);
    }

    #[test]
    fn cosine_refuses_different_dimensions() {
        assert_eq!(
            cosine_similarity(&[1.0], &[1.0, 2.0]),
            Err(VectorError::DimensionMismatch { left: 1, right: 2 })
        );
    }

    #[test]
    fn normalization_gives_unit_length_and_keeps_direction() {
        let n = l2_normalized(&[3.0, 4.0]).unwrap();
        assert!((n[0] - 0.6).abs() < 1e-7 && (n[1] - 0.8).abs() < 1e-7);
        assert_eq!(l2_normalized(&[0.0, 0.0]), None);
    }

    // Property tests: the decoder sees bytes from disk or from another extension's function;
    // whatever they are, it answers with a vector that re-encodes to the same bytes, or with
    // an error that says why, and never panics.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn element() -> impl Strategy<Value = f32> {
            prop_oneof![
                -1.0..1.0f32,
                any::<f32>(),
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::NEG_INFINITY),
                Just(f32::MAX),
                Just(-f32::MAX),
                Just(f32::MIN_POSITIVE / 2.0),
                Just(-0.0f32),
            ]
        }

        fn finite() -> impl Strategy<Value = f32> {
            prop_oneof![
                -1.0..1.0f32,
                -f32::MAX..f32::MAX,
                proptest::num::f32::NORMAL | proptest::num::f32::SUBNORMAL | proptest::num::f32::ZERO,
                Just(f32::MAX),
                Just(-f32::MAX),
                Just(-0.0f32),
            ]
        }

        /// A payload: mostly well-formed headers over any elements, sometimes any bytes.
        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            let shaped = (
                prop_oneof![1..40i16, any::<i16>()],
                prop_oneof![4 => Just(0i16), 1 => any::<i16>()],
                proptest::collection::vec(element(), 0..40),
                prop_oneof![4 => Just(0usize), 1 => 0..6usize],
            )
                .prop_map(|(dim, unused, values, cut)| {
                    let mut p = payload(dim, unused, &values);
                    p.truncate(p.len().saturating_sub(cut));
                    p
                });
            prop_oneof![3 => shaped, 1 => proptest::collection::vec(any::<u8>(), 0..64)]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            #[test]
            fn any_bytes_decode_to_a_faithful_vector_or_a_reasoned_error(p in bytes()) {
                match decode_payload(&p) {
                    Ok(values) => {
                        let dim = i16::from_ne_bytes([p[0], p[1]]);
                        prop_assert_eq!(values.len(), dim as usize);
                        prop_assert!(values.iter().all(|v| v.is_finite()));
                        let mut out = vec![0u8; payload_len(values.len())];
                        encode_payload_into(&values, &mut out).unwrap();
                        prop_assert_eq!(out, p);
                    }
                    Err(e) => {
                        // The error names a real fault of these bytes.
                        match e {
                            VectorError::TooShort(n) => prop_assert!(n < PAYLOAD_HEADER),
                            VectorError::BadDimension { dim } => {
                                prop_assert!(dim < 1 || dim as usize > VECTOR_MAX_DIM)
                            }
                            VectorError::SizeMismatch { expected, actual, .. } => {
                                prop_assert_ne!(expected, actual);
                                prop_assert_eq!(actual, p.len());
                            }
                            VectorError::UnusedNotZero(u) => prop_assert_ne!(u, 0),
                            VectorError::NotFinite { index } => {
                                let at = PAYLOAD_HEADER + 4 * index;
                                let v = f32::from_ne_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
                                prop_assert!(!v.is_finite());
                            }
                            VectorError::DimensionMismatch { .. } => {
                                prop_assert!(false, "decoding cannot mismatch dimensions")
                            }
                        }
                    }
                }
            }

            #[test]
            fn finite_vectors_round_trip_bit_for_bit(values in proptest::collection::vec(finite(), 1..200)) {
                let mut out = vec![0u8; payload_len(values.len())];
                encode_payload_into(&values, &mut out).unwrap();
                let back = decode_payload(&out).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                prop_assert_eq!(bits(&back), bits(&values));
            }

            #[test]
            fn a_vector_with_a_non_finite_element_is_never_encoded(
                mut values in proptest::collection::vec(finite(), 1..50),
                at in any::<prop::sample::Index>(),
                bad in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
            ) {
                let i = at.index(values.len());
                values[i] = bad;
                let mut out = vec![0u8; payload_len(values.len())];
                prop_assert_eq!(
                    encode_payload_into(&values, &mut out),
                    Err(VectorError::NotFinite { index: values.iter().position(|v| !v.is_finite()).unwrap() })
                );
            }

            #[test]
            fn cosine_is_within_bounds_symmetric_and_scale_free(
                pair in (1..64usize).prop_flat_map(|n| (
                    proptest::collection::vec(finite(), n),
                    proptest::collection::vec(finite(), n),
                )),
                scale in prop_oneof![Just(2.0f32), Just(0.5f32), 1.0e-3..1.0e3f32],
            ) {
                let (a, b) = pair;
                let c = cosine_similarity(&a, &b).unwrap();
                prop_assert_eq!(c, cosine_similarity(&b, &a).unwrap());
                if let Some(c) = c {
                    prop_assert!(c.is_finite() && (-1.0..=1.0).contains(&c), "{c}");
                    // Scaling one side by a positive factor keeps the angle (when the scaled
                    // vector stays finite and non-zero in f32).
                    let scaled: Vec<f32> = a.iter().map(|v| v * scale).collect();
                    if scaled.iter().all(|v| v.is_finite()) {
                        if let Some(c2) = cosine_similarity(&scaled, &b).unwrap() {
                            prop_assert!((c - c2).abs() < 1e-3, "{c} vs {c2}");
                        }
                    }
                }
            }

            #[test]
            fn normalization_gives_unit_length_or_none(values in proptest::collection::vec(finite(), 1..64)) {
                match l2_normalized(&values) {
                    Some(u) => {
                        prop_assert!(u.iter().all(|v| v.is_finite()));
                        let len = u.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                        prop_assert!((len - 1.0).abs() < 1e-5, "length {len}");
                        prop_assert!(validate(&u).is_ok());
                    }
                    None => {
                        let norm2: f64 = values.iter().map(|&v| (v as f64).powi(2)).sum();
                        prop_assert!(norm2 == 0.0 || !norm2.sqrt().is_finite());
                    }
                }
            }
        }
    }
}
