//! `roi_assess(facts jsonb)`: the figures of an activation from the facts that
//! `evaluate_sponsorship_roi()` counts (sql/80_roi_audit.sql). The arithmetic is
//! [`crate::roi`].

use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

use crate::error::{OrRaise, SqlError};
use crate::roi::{self, Facts, RoiError};

impl SqlError for RoiError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
    }
}

/// The ROI figures (the documented keys of `event_sponsorships.roi_summary`) of one
/// activation's facts: counts of the sponsor's impressions, viewers, dwell, completions and
/// attributed ticket views and sales in its window, its cost and currency, and the
/// package's expected reach.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn roi_assess(p_facts: JsonB) -> JsonB {
    let facts = Facts::from_json(&p_facts.0).or_raise();
    let assessment = roi::assess(&facts);
    JsonB(serde_json::Value::Object(roi::summary(&facts, &assessment)))
}
