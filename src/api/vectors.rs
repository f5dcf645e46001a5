//! Vector helpers callable from SQL, taking and returning pgvector's `vector` directly.

use pgrx::prelude::*;

use crate::error::OrRaise;
use crate::pgvector::Vector;
use crate::vector_math;

/// Cosine similarity of two vectors in [-1, 1]; NULL when either is the zero vector
/// (the angle is undefined). Different dimensions are an error (SQLSTATE 22000).
#[pg_extern(immutable, strict, parallel_safe)]
pub fn cosine_similarity(a: Vector, b: Vector) -> Option<f64> {
    vector_math::cosine_similarity(a.as_slice(), b.as_slice()).or_raise()
}

/// The vector scaled to unit length; NULL for the zero vector.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn normalize_embedding(v: Vector) -> Option<Vector> {
    vector_math::l2_normalized(v.as_slice()).map(Vector)
}

/// Number of dimensions of a vector, read through the extension's own decoder.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn embedding_dims(v: Vector) -> i32 {
    v.dims() as i32
}
