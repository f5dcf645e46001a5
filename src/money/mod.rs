//! Money (SPEC §5): currencies and their minor units, the platform fee. Pure Rust, integer
//! minor units only; the SQL functions live in `api::money`.

pub mod currency;
pub mod fee;
