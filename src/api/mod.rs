//! The SQL-facing layer: thin `#[pg_extern]` wrappers over the pure modules.

pub mod load;
pub mod matching;
pub mod quality;
pub mod queue;
pub mod semantic;
pub mod vectors;
