//! The SQL-facing layer: thin `#[pg_extern]` wrappers over the pure modules.

pub mod embedding;
pub mod jsonb;
pub mod load;
pub mod match_cache;
pub mod matching;
pub mod money;
pub mod ops;
pub mod owner;
pub mod payouts;
pub mod quality;
pub mod queue;
pub mod roi;
pub mod semantic;
pub mod vectors;
