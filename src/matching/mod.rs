//! Sponsor–event matching (SPEC §3): the five factors and the timing multiplier, their
//! explanation, and the batch kernel. Pure Rust; the SQL functions live in `api::matching`.

pub mod explain;
pub mod kernel;
pub mod model;
pub mod score;
pub mod semantic;

#[cfg(test)]
mod tests;
