//! The event quality formula for SQL (used by `mv_event_quality_scores`).

use pgrx::prelude::*;

use crate::error::OrRaise;
use crate::quality::{self, QualityInputs, QualityTier};

/// One event's quality components, each in [0, 1], its `final_quality_score` and tier.
/// NULL inputs mean "not measured" (see the README for each component's scale).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
pub fn event_quality_components(
    engagement_score: Option<f64>,
    ticket_conversion_rate: Option<f64>,
    days_since_start: Option<f64>,
    description_chars: Option<i64>,
    has_category: Option<bool>,
    has_city: Option<bool>,
    category_share: Option<f64>,
    attendee_count: Option<i64>,
    social_mentions: Option<i64>,
    sentiment_score: Option<f64>,
) -> TableIterator<
    'static,
    (
        name!(engagement_rate, f64),
        name!(conversion, f64),
        name!(recency, f64),
        name!(content, f64),
        name!(category_popularity, f64),
        name!(volume, f64),
        name!(social_proof, f64),
        name!(sentiment, f64),
        name!(final_quality_score, f64),
        name!(quality_tier, String),
    ),
> {
    let q = quality::compute(&QualityInputs {
        engagement_score,
        ticket_conversion_rate,
        days_since_start,
        description_chars: description_chars.unwrap_or(0),
        has_category: has_category.unwrap_or(false),
        has_city: has_city.unwrap_or(false),
        category_share,
        attendee_count,
        social_mentions,
        sentiment_score,
    })
    .or_raise();
    TableIterator::once((
        q.engagement_rate,
        q.conversion,
        q.recency,
        q.content,
        q.category_popularity,
        q.volume,
        q.social_proof,
        q.sentiment,
        q.final_quality_score,
        q.tier.as_str().to_string(),
    ))
}

/// The tier of a quality score: premium ≥ 0.8, high ≥ 0.6, medium ≥ 0.4, else low.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn quality_tier(score: f64) -> &'static str {
    QualityTier::from_score(score).as_str()
}
