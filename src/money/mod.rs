//! Money (SPEC §5): currencies and their minor units, the platform fee, staged payouts. Pure
//! Rust, integer minor units only; the SQL functions live in `api::money` and `api::payouts`.

pub mod currency;
pub mod fee;
pub mod stages;
