//! The event quality score behind `mv_event_quality_scores` (SPEC §3): eight components,
//! each clamped to [0, 1], weighted into `final_quality_score` in [0, 1], and a tier.
//! Pure Rust; the materialized view calls it through `event_quality_components(...)`.
//!
//! Components and their scales (documented in the README):
//! - engagement_rate: `engagement_score / 100`.
//! - conversion: ticket conversion rate, saturating at [`CONVERSION_SATURATION`].
//! - recency: 1 for upcoming events, halving every [`RECENCY_HALF_LIFE_DAYS`] after the start.
//! - content: listing completeness: description length (saturating at
//!   [`DESCRIPTION_FULL_CHARS`]), category present, city present.
//! - category_popularity: events in the event's category relative to the largest category.
//! - volume: `ln(1 + attendees) / ln(1 + VOLUME_SATURATION)`.
//! - social_proof: `ln(1 + mentions) / ln(1 + SOCIAL_SATURATION)`.
//! - sentiment: `(sentiment_score + 1) / 2`.
//!
//! A measured input that is missing (no audience insights yet) counts as no evidence (0),
//! except sentiment, whose neutral point is 0.5.

use thiserror::Error;

pub const CONVERSION_SATURATION: f64 = 0.20;
pub const RECENCY_HALF_LIFE_DAYS: f64 = 90.0;
pub const DESCRIPTION_FULL_CHARS: f64 = 600.0;
pub const VOLUME_SATURATION: f64 = 50_000.0;
pub const SOCIAL_SATURATION: f64 = 10_000.0;

/// Component weights; they sum to 1.
pub const WEIGHTS: QualityWeights = QualityWeights {
    engagement_rate: 0.20,
    conversion: 0.15,
    recency: 0.10,
    content: 0.10,
    category_popularity: 0.05,
    volume: 0.15,
    social_proof: 0.15,
    sentiment: 0.10,
};

pub const TIER_PREMIUM: f64 = 0.8;
pub const TIER_HIGH: f64 = 0.6;
pub const TIER_MEDIUM: f64 = 0.4;

#[derive(Debug, Clone, Copy)]
pub struct QualityWeights {
    pub engagement_rate: f64,
    pub conversion: f64,
    pub recency: f64,
    pub content: f64,
    pub category_popularity: f64,
    pub volume: f64,
    pub social_proof: f64,
    pub sentiment: f64,
}

/// What the score is computed from. `None` means "not measured".
#[derive(Debug, Clone, Default)]
pub struct QualityInputs {
    pub engagement_score: Option<f64>,
    pub ticket_conversion_rate: Option<f64>,
    /// Days since the event started; negative for upcoming events.
    pub days_since_start: Option<f64>,
    pub description_chars: i64,
    pub has_category: bool,
    pub has_city: bool,
    /// Events in this event's category divided by events in the largest category.
    pub category_share: Option<f64>,
    pub attendee_count: Option<i64>,
    pub social_mentions: Option<i64>,
    pub sentiment_score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualityScore {
    pub engagement_rate: f64,
    pub conversion: f64,
    pub recency: f64,
    pub content: f64,
    pub category_popularity: f64,
    pub volume: f64,
    pub social_proof: f64,
    pub sentiment: f64,
    pub final_quality_score: f64,
    pub tier: QualityTier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityTier {
    Premium,
    High,
    Medium,
    Low,
}

impl QualityTier {
    pub fn from_score(score: f64) -> Self {
        if score >= TIER_PREMIUM {
            QualityTier::Premium
        } else if score >= TIER_HIGH {
            QualityTier::High
        } else if score >= TIER_MEDIUM {
            QualityTier::Medium
        } else {
            QualityTier::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QualityTier::Premium => "premium",
            QualityTier::High => "high",
            QualityTier::Medium => "medium",
            QualityTier::Low => "low",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum QualityError {
    #[error("quality input \"{0}\" is not a finite number")]
    NotFinite(&'static str),
}

pub fn clamp01(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

fn finite(name: &'static str, v: Option<f64>) -> Result<Option<f64>, QualityError> {
    match v {
        Some(x) if !x.is_finite() => Err(QualityError::NotFinite(name)),
        other => Ok(other),
    }
}

fn log_scale(count: Option<i64>, saturation: f64) -> f64 {
    let n = count.unwrap_or(0).max(0) as f64;
    clamp01((1.0 + n).ln() / (1.0 + saturation).ln())
}

pub fn compute(inputs: &QualityInputs) -> Result<QualityScore, QualityError> {
    let engagement = finite("engagement_score", inputs.engagement_score)?;
    let conversion = finite("ticket_conversion_rate", inputs.ticket_conversion_rate)?;
    let days = finite("days_since_start", inputs.days_since_start)?;
    let share = finite("category_share", inputs.category_share)?;
    let sentiment = finite("sentiment_score", inputs.sentiment_score)?;

    let engagement_rate = clamp01(engagement.unwrap_or(0.0) / 100.0);
    let conversion = clamp01(conversion.unwrap_or(0.0) / CONVERSION_SATURATION);
    let recency = match days {
        None => 0.0,
        Some(d) if d <= 0.0 => 1.0,
        Some(d) => clamp01(0.5f64.powf(d / RECENCY_HALF_LIFE_DAYS)),
    };
    let description = clamp01(inputs.description_chars.max(0) as f64 / DESCRIPTION_FULL_CHARS);
    let content = clamp01(
        0.6 * description
            + 0.2 * f64::from(u8::from(inputs.has_category))
            + 0.2 * f64::from(u8::from(inputs.has_city)),
    );
    let category_popularity = clamp01(share.unwrap_or(0.0));
    let volume = log_scale(inputs.attendee_count, VOLUME_SATURATION);
    let social_proof = log_scale(inputs.social_mentions, SOCIAL_SATURATION);
    let sentiment = clamp01((sentiment.unwrap_or(0.0) + 1.0) / 2.0);

    let w = WEIGHTS;
    let final_quality_score = clamp01(
        w.engagement_rate * engagement_rate
            + w.conversion * conversion
            + w.recency * recency
            + w.content * content
            + w.category_popularity * category_popularity
            + w.volume * volume
            + w.social_proof * social_proof
            + w.sentiment * sentiment,
    );
    Ok(QualityScore {
        engagement_rate,
        conversion,
        recency,
        content,
        category_popularity,
        volume,
        social_proof,
        sentiment,
        final_quality_score,
        tier: QualityTier::from_score(final_quality_score),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best() -> QualityInputs {
        QualityInputs {
            engagement_score: Some(100.0),
            ticket_conversion_rate: Some(1.0),
            days_since_start: Some(-10.0),
            description_chars: 5_000,
            has_category: true,
            has_city: true,
            category_share: Some(1.0),
            attendee_count: Some(10_000_000),
            social_mentions: Some(10_000_000),
            sentiment_score: Some(1.0),
        }
    }

    #[test]
    fn weights_sum_to_one() {
        let w = WEIGHTS;
        let sum = w.engagement_rate
            + w.conversion
            + w.recency
            + w.content
            + w.category_popularity
            + w.volume
            + w.social_proof
            + w.sentiment;
        assert!((sum - 1.0).abs() < 1e-12, "sum = {sum}");
    }

    #[test]
    fn the_best_possible_event_scores_exactly_one_and_is_premium() {
        let q = compute(&best()).unwrap();
        assert_eq!(q.final_quality_score, 1.0);
        assert_eq!(q.tier, QualityTier::Premium);
    }

    #[test]
    fn an_event_with_nothing_measured_scores_only_neutral_sentiment() {
        let q = compute(&QualityInputs::default()).unwrap();
        assert_eq!(q.sentiment, 0.5);
        assert!((q.final_quality_score - 0.05).abs() < 1e-12);
        assert_eq!(q.tier, QualityTier::Low);
    }

    #[test]
    fn out_of_range_inputs_are_clamped_per_component() {
        let q = compute(&QualityInputs {
            engagement_score: Some(250.0),
            ticket_conversion_rate: Some(-3.0),
            sentiment_score: Some(9.0),
            category_share: Some(4.0),
            attendee_count: Some(-5),
            description_chars: -1,
            ..Default::default()
        })
        .unwrap();
        for c in [
            q.engagement_rate,
            q.conversion,
            q.recency,
            q.content,
            q.category_popularity,
            q.volume,
            q.social_proof,
            q.sentiment,
            q.final_quality_score,
        ] {
            assert!((0.0..=1.0).contains(&c), "{c} outside [0,1]");
        }
        assert_eq!(q.engagement_rate, 1.0);
        assert_eq!(q.conversion, 0.0);
        assert_eq!(q.volume, 0.0);
    }

    #[test]
    fn recency_halves_every_half_life_after_the_start() {
        let at = |d: f64| {
            compute(&QualityInputs {
                days_since_start: Some(d),
                ..Default::default()
            })
            .unwrap()
            .recency
        };
        assert_eq!(at(-1.0), 1.0);
        assert_eq!(at(0.0), 1.0);
        assert!((at(RECENCY_HALF_LIFE_DAYS) - 0.5).abs() < 1e-12);
        assert!((at(2.0 * RECENCY_HALF_LIFE_DAYS) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn conversion_saturates_at_its_documented_rate() {
        let at = |r: f64| {
            compute(&QualityInputs {
                ticket_conversion_rate: Some(r),
                ..Default::default()
            })
            .unwrap()
            .conversion
        };
        assert!((at(0.05) - 0.25).abs() < 1e-12);
        assert_eq!(at(CONVERSION_SATURATION), 1.0);
        assert_eq!(at(0.9), 1.0);
    }

    #[test]
    fn volume_is_logarithmic_in_attendees() {
        let at = |n: i64| {
            compute(&QualityInputs {
                attendee_count: Some(n),
                ..Default::default()
            })
            .unwrap()
            .volume
        };
        assert_eq!(at(0), 0.0);
        assert_eq!(at(50_000), 1.0);
        let expected = (1.0f64 + 500.0).ln() / (1.0f64 + 50_000.0).ln();
        assert!((at(500) - expected).abs() < 1e-12);
    }

    #[test]
    fn tiers_follow_the_thresholds_at_their_boundaries() {
        assert_eq!(QualityTier::from_score(0.8), QualityTier::Premium);
        assert_eq!(QualityTier::from_score(0.7999999), QualityTier::High);
        assert_eq!(QualityTier::from_score(0.6), QualityTier::High);
        assert_eq!(QualityTier::from_score(0.5999999), QualityTier::Medium);
        assert_eq!(QualityTier::from_score(0.4), QualityTier::Medium);
        assert_eq!(QualityTier::from_score(0.3999999), QualityTier::Low);
        assert_eq!(QualityTier::from_score(0.0), QualityTier::Low);
    }

    #[test]
    fn non_finite_inputs_are_rejected_by_name() {
        let err = compute(&QualityInputs {
            sentiment_score: Some(f64::NAN),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err, QualityError::NotFinite("sentiment_score"));
    }
}
