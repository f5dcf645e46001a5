//! The SQL-facing layer: thin `#[pg_extern]` wrappers over the pure modules.

pub mod quality;
pub mod vectors;
