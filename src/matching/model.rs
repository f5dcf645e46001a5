//! What a match is computed from: one sponsor, one event, the marketplace context and the
//! active weights, as plain Rust values (the SQL layer fills them from the tables).

use std::collections::HashMap;

use serde_json::Value;
use thiserror::Error;

/// A sponsor as the matcher sees it: its profile, with every free-form field already
/// normalized (trimmed, lower-cased).
#[derive(Debug, Clone, Default)]
pub struct SponsorInput {
    pub id: [u8; 16],
    pub has_profile: bool,
    pub annual_budget_cents: Option<i64>,
    pub currency: String,
    /// Target age segments and their weights (`target_audience.age_segments`), unnormalized.
    pub target_age: Vec<(String, f64)>,
    /// `target_audience.interests`.
    pub interests: Vec<String>,
    /// `target_audience.regions`.
    pub audience_regions: Vec<String>,
    pub preferred_categories: Vec<String>,
    /// `sponsor_profiles.regions`: cities, countries or `global`.
    pub regions: Vec<String>,
    pub embedding: Option<Vec<f32>>,
}

/// An event as the matcher sees it.
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    pub id: [u8; 16],
    pub category: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// Days from now to the start (negative once started).
    pub starts_in_days: f64,
    /// Days from now to the end, when the event has one.
    pub ends_in_days: Option<f64>,
    /// The start and end as Unix epoch seconds, when known: a compiled event kept between
    /// calls is re-timed from them (see `CompiledEvent::retime`). Loaders compute the two
    /// `*_in_days` fields from these with [`days_until`], so both give identical values.
    pub start_epoch: Option<f64>,
    pub end_epoch: Option<f64>,
    pub has_insights: bool,
    /// Measured age segments (segment -> share).
    pub age_segments: Vec<(String, f64)>,
    /// Where attendees come from (place -> share).
    pub geo_distribution: Vec<(String, f64)>,
    pub quality_score: Option<f64>,
    pub quality_tier: Option<String>,
    /// Active packages with inventory left: (price in minor units, currency), cheapest first.
    pub packages: Vec<(i64, String)>,
    pub embedding: Option<Vec<f32>>,
}

/// Facts about the whole marketplace that a single pair needs.
#[derive(Debug, Clone, Default)]
pub struct MarketContext {
    /// Lower-cased city -> lower-cased countries it is found in (from the events).
    pub city_countries: HashMap<String, Vec<String>>,
    /// (quality tier, currency) -> median price of active packages of events of that tier.
    pub tier_median_price: HashMap<(String, String), i64>,
}

/// The active scoring weights; validated on construction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub version: i32,
    pub budget_fit: f64,
    pub audience_overlap: f64,
    pub geo_fit: f64,
    pub engagement_quality: f64,
    pub objectives_similarity: f64,
}

#[derive(Debug, Error, PartialEq)]
pub enum WeightsError {
    #[error("scoring weight {name} is {value}; weights must be finite and non-negative")]
    Negative { name: &'static str, value: f64 },
    #[error("scoring weights sum to {0}; they must sum to 1")]
    BadSum(f64),
}

impl Weights {
    /// SPEC §3 defaults.
    pub const DEFAULT: Weights = Weights {
        version: 1,
        budget_fit: 0.30,
        audience_overlap: 0.25,
        geo_fit: 0.15,
        engagement_quality: 0.20,
        objectives_similarity: 0.10,
    };

    pub fn new(
        version: i32,
        budget_fit: f64,
        audience_overlap: f64,
        geo_fit: f64,
        engagement_quality: f64,
        objectives_similarity: f64,
    ) -> Result<Weights, WeightsError> {
        let named = [
            ("budget_fit", budget_fit),
            ("audience_overlap", audience_overlap),
            ("geo_fit", geo_fit),
            ("engagement_quality", engagement_quality),
            ("objectives_similarity", objectives_similarity),
        ];
        for (name, value) in named {
            if !value.is_finite() || value < 0.0 {
                return Err(WeightsError::Negative { name, value });
            }
        }
        let sum: f64 = named.iter().map(|(_, v)| v).sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(WeightsError::BadSum(sum));
        }
        Ok(Weights {
            version,
            budget_fit,
            audience_overlap,
            geo_fit,
            engagement_quality,
            objectives_similarity,
        })
    }
}

/// Days from `now_epoch` to `epoch` (both Unix epoch seconds); negative once past.
pub fn days_until(epoch: f64, now_epoch: f64) -> f64 {
    (epoch - now_epoch) / 86_400.0
}

/// Lower-cases and trims a free-form label; empty labels are dropped by the callers.
pub fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

fn norm_all<I: IntoIterator<Item = String>>(items: I) -> Vec<String> {
    let mut out: Vec<String> = items
        .into_iter()
        .map(|s| norm(&s))
        .filter(|s| !s.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Strings of a JSON array (non-strings ignored); a lone string counts as one.
pub fn json_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => {
            norm_all(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
        }
        Some(Value::String(s)) => norm_all([s.clone()]),
        _ => Vec::new(),
    }
}

/// A share map `{"18-24": 0.3, ...}` as sorted (key, share) pairs, keeping positive finite
/// numbers. An array of keys counts as equal shares (a sponsor listing the segments it targets).
pub fn json_shares(v: Option<&Value>) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = match v {
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| {
                v.as_f64()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .map(|x| (norm(k), x))
            })
            .filter(|(k, _)| !k.is_empty())
            .collect(),
        Some(Value::Array(_)) => json_strings(v).into_iter().map(|k| (k, 1.0)).collect(),
        _ => Vec::new(),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    // merge keys that differ only in case or spacing
    let mut merged: Vec<(String, f64)> = Vec::with_capacity(out.len());
    for (k, v) in out {
        match merged.last_mut() {
            Some((lk, lv)) if *lk == k => *lv += v,
            _ => merged.push((k, v)),
        }
    }
    merged
}

impl SponsorInput {
    /// Fills the audience fields from `target_audience` jsonb.
    pub fn with_target_audience(mut self, target_audience: Option<&Value>) -> Self {
        let ta = target_audience.and_then(Value::as_object);
        self.target_age = json_shares(ta.and_then(|m| m.get("age_segments")));
        self.interests = json_strings(ta.and_then(|m| m.get("interests")));
        self.audience_regions = json_strings(ta.and_then(|m| m.get("regions")));
        self
    }

    pub fn with_lists(mut self, preferred_categories: Vec<String>, regions: Vec<String>) -> Self {
        self.preferred_categories = norm_all(preferred_categories);
        self.regions = norm_all(regions);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_weights_are_valid() {
        let d = Weights::DEFAULT;
        assert!(Weights::new(
            1,
            d.budget_fit,
            d.audience_overlap,
            d.geo_fit,
            d.engagement_quality,
            d.objectives_similarity
        )
        .is_ok());
    }

    #[test]
    fn weights_must_be_non_negative_and_sum_to_one() {
        assert_eq!(
            Weights::new(2, -0.1, 0.5, 0.2, 0.2, 0.2),
            Err(WeightsError::Negative {
                name: "budget_fit",
                value: -0.1
            })
        );
        assert!(matches!(
            Weights::new(2, 0.5, 0.5, 0.5, 0.0, 0.0),
            Err(WeightsError::BadSum(_))
        ));
        assert!(matches!(
            Weights::new(2, f64::NAN, 0.5, 0.5, 0.0, 0.0),
            Err(WeightsError::Negative { .. })
        ));
    }

    #[test]
    fn share_maps_are_normalized_and_arrays_mean_equal_shares() {
        let m = json_shares(Some(
            &json!({" 25-34 ": 0.5, "18-24": 0.2, "bad": "x", "neg": -1}),
        ));
        assert_eq!(m, vec![("18-24".into(), 0.2), ("25-34".into(), 0.5)]);
        let a = json_shares(Some(&json!(["25-34", "18-24"])));
        assert_eq!(a, vec![("18-24".into(), 1.0), ("25-34".into(), 1.0)]);
        assert!(json_shares(Some(&json!(3))).is_empty());
    }

    #[test]
    fn target_audience_fields_are_read_and_normalized() {
        let s = SponsorInput::default()
            .with_target_audience(Some(
                &json!({"interests": ["Music", " music", "Food"], "regions": ["Austin"]}),
            ))
            .with_lists(vec!["Music".into(), "".into()], vec![" Global ".into()]);
        assert_eq!(s.interests, vec!["food", "music"]);
        assert_eq!(s.audience_regions, vec!["austin"]);
        assert_eq!(s.preferred_categories, vec!["music"]);
        assert_eq!(s.regions, vec!["global"]);
    }
}
