//! `sponsorship`: the sponsorship marketplace of an event-ticketing platform, inside
//! PostgreSQL. This file only wires the modules together.
//!
//! - Pure domain logic (no pgrx): [`quality`], [`vector_math`], [`matching`],
//!   [`money`], [`roi`] (post-event return of an activation), [`snapshot_cache`] (when a backend may reuse what it read before).
//! - Postgres glue: [`error`] (SQLSTATE mapping), [`pgvector`] (the `vector` type),
//!   [`gucs`] (every `sponsorship.*` setting), [`worker`] (the recalculation worker).
//! - The SQL API: [`api`].
//! - The data model, policies and views: `sql/*.sql`, included below in order.

use pgrx::prelude::*;

pgrx::pg_module_magic!(name, version);

pub mod api;
pub mod error;
pub mod gucs;
pub mod matching;
pub mod money;
pub mod pgvector;
pub mod quality;
pub mod roi;
pub mod snapshot_cache;
pub mod vector_math;
pub mod worker;

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    worker::register();
    api::payouts::register_worker();
}

extension_sql_file!(
    "../sql/00_roles_and_helpers.sql",
    name = "roles_and_helpers",
    bootstrap
);
extension_sql_file!(
    "../sql/10_tables.sql",
    name = "tables",
    requires = ["roles_and_helpers"]
);
extension_sql_file!(
    "../sql/15_access.sql",
    name = "access",
    requires = ["tables"]
);
extension_sql_file!(
    "../sql/20_quality.sql",
    name = "quality",
    requires = ["access", api::quality::event_quality_components]
);
extension_sql_file!(
    "../sql/30_views.sql",
    name = "views",
    requires = ["quality"]
);
extension_sql_file!(
    "../sql/40_security.sql",
    name = "security",
    requires = ["views"]
);
extension_sql_file!(
    "../sql/50_matching.sql",
    name = "matching",
    requires = [
        "security",
        api::matching::event_match_arrays,
        api::matching::sponsor_match_arrays,
        api::matching::match_matrix_arrays,
        api::matching::fn_compute_match_score
    ]
);
extension_sql_file!(
    "../sql/60_embeddings.sql",
    name = "embeddings",
    requires = [
        "matching",
        api::embedding::embed,
        api::semantic::semantic_sponsor_event_match
    ]
);
extension_sql_file!(
    "../sql/70_payouts.sql",
    name = "payouts",
    requires = [
        "embeddings",
        api::money::payout_stages,
        api::money::calculate_platform_fee_in,
        api::owner::caller_is_service_role,
        api::payouts::payout_lease
    ]
);
extension_sql_file!(
    "../sql/80_roi_audit.sql",
    name = "roi_audit",
    requires = ["payouts", api::roi::roi_assess, api::owner::caller_role]
);
extension_sql_file!(
    "../sql/85_operations.sql",
    name = "operations",
    requires = ["roi_audit", api::ops::log_refresh_failure]
);
extension_sql_file!("../sql/90_finalize.sql", name = "finalize", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[path = "../pgrx-tests/mod.rs"]
mod pgrx_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
