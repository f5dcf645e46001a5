//! The breakdown stored in `sponsorship_matches.overlap_metrics` and returned by
//! `fn_compute_match_score`: each factor's value, weight and contribution, the inputs that
//! drove it, and what was missing. The old top-level keys (`budget_fit`, `geo_fit`, …,
//! `temporal_fit`, `event_quality_tier`, `sponsor_budget_range`) stay numbers/strings at the
//! top level for callers that read them.

use serde_json::{json, Map, Value};

use super::model::Weights;
use super::score::{
    round5, BudgetSource, CompiledEvent, CompiledSponsor, GeoRule, PairEval, World, AGE_WEIGHT,
    BUDGET_SHARE_PER_EVENT, INTEREST_WEIGHT, MODEL_VERSION, NEUTRAL, REGION_WEIGHT,
};

fn r6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Budget band of an annual budget in minor units (major-unit thresholds 1M / 100k / 10k).
pub fn budget_range(annual_budget_cents: Option<i64>) -> &'static str {
    match annual_budget_cents {
        None => "unknown",
        Some(b) if b >= 100_000_000 => "enterprise",
        Some(b) if b >= 10_000_000 => "mid-market",
        Some(b) if b >= 1_000_000 => "small-business",
        Some(_) => "micro",
    }
}

pub fn breakdown(
    world: &World,
    s: &CompiledSponsor,
    e: &CompiledEvent,
    ev: &PairEval,
    w: &Weights,
    s_has_embedding: bool,
    e_has_embedding: bool,
) -> Value {
    // budget
    let mut budget_inputs = Map::new();
    budget_inputs.insert("annual_budget_cents".into(), json!(s.annual_budget_cents));
    budget_inputs.insert(
        "per_event_budget_cents".into(),
        json!(s.budget_per_event.map(|b| b.round() as i64)),
    );
    budget_inputs.insert(
        "per_event_share_of_annual_budget".into(),
        json!(BUDGET_SHARE_PER_EVENT),
    );
    budget_inputs.insert("currency".into(), json!(world.currencies.name(s.currency)));
    let budget_source = match ev.budget_source {
        BudgetSource::Packages => {
            budget_inputs.insert("cheapest_package_cents".into(), json!(ev.budget_cheapest));
            budget_inputs.insert("packages_in_currency".into(), json!(ev.budget_packages));
            "packages"
        }
        BudgetSource::TierEstimate => {
            budget_inputs.insert(
                "tier_median_package_cents".into(),
                json!(ev.budget_cheapest),
            );
            budget_inputs.insert(
                "quality_tier".into(),
                json!(e.tier.map(|t| world.tiers.name(t))),
            );
            "quality_tier_estimate"
        }
        BudgetSource::Missing => "neutral",
    };
    budget_inputs.insert("source".into(), json!(budget_source));

    // audience
    let mut aud_missing = Vec::new();
    if ev.age_overlap.is_none() {
        aud_missing.push(if !s.has_age {
            "target_age_segments"
        } else {
            "event_age_segments"
        });
    }
    if ev.region_share.is_none() {
        aud_missing.push(if !s.has_audience_regions {
            "target_regions"
        } else {
            "event_geo_distribution"
        });
    }
    if ev.interest_match.is_none() {
        aud_missing.push(if !s.has_interests {
            "target_interests"
        } else {
            "event_category"
        });
    }
    let matched_places: Vec<&str> = e
        .geo
        .iter()
        .zip(&e.geo_keys)
        .filter(|((m, _), _)| s.audience_global || m.intersects(&s.audience_regions))
        .map(|(_, k)| k.as_str())
        .collect();
    // geo
    let geo_rule = match ev.geo_rule {
        GeoRule::Global => "sponsor targets global",
        GeoRule::City => "event city is a sponsor region",
        GeoRule::Country => "event country is a sponsor region",
        GeoRule::SameCountryAsTargetCity => "event is in the country of a sponsor city",
        GeoRule::NoMatch => "no sponsor region matches",
        GeoRule::NoSponsorRegions => "sponsor has no regions",
        GeoRule::NoEventLocation => "event has no city or country",
    };
    let sponsor_regions: Vec<&str> = if s.geo_global {
        vec!["global"]
    } else {
        s.geo_places.ids().map(|id| world.places.name(id)).collect()
    };

    let objectives_neutral = ev.cosine.is_none();

    let factor = |value: f64, weight: f64, inputs: Value| {
        json!({
            "value": r6(value),
            "weight": weight,
            "contribution": r6(value * weight),
            "inputs": inputs,
        })
    };

    let mut out = compact(world, s, e, ev, w, s_has_embedding, e_has_embedding);
    let top = out.as_object_mut().expect("compact is an object");
    top.insert("neutral_value".into(), json!(NEUTRAL));
    top.insert("factors".into(), json!({
            "budget_fit": factor(ev.budget_fit, w.budget_fit, Value::Object(budget_inputs)),
            "audience_overlap": factor(ev.audience_overlap, w.audience_overlap, json!({
                "age_overlap": ev.age_overlap.map(r6),
                "region_share": ev.region_share.map(r6),
                "interest_match": ev.interest_match,
                "signal_weights": {"age": AGE_WEIGHT, "regions": REGION_WEIGHT, "interests": INTEREST_WEIGHT},
                "matched_places": matched_places,
                "event_category": e.category.map(|c| world.categories.name(c)),
                "missing": aud_missing,
            })),
            "geo_fit": factor(ev.geo_fit, w.geo_fit, json!({
                "rule": geo_rule,
                "sponsor_regions": sponsor_regions,
                "event_city": e.city.map(|c| world.places.name(c)),
                "event_country": e.country.map(|c| world.places.name(c)),
            })),
            "engagement_quality": factor(ev.engagement_quality, w.engagement_quality, json!({
                "quality_score": e.quality.map(r6),
                "quality_tier": e.tier.map(|t| world.tiers.name(t)),
            })),
            "objectives_similarity": factor(ev.objectives_similarity, w.objectives_similarity, json!({
                "cosine": ev.cosine.map(r6),
                "neutral": objectives_neutral,
            })),
    }));
    top.insert(
        "temporal".into(),
        json!({
            "multiplier": r6(ev.temporal_fit),
            "starts_in_days": r6(e.starts_in_days),
            "days_since_end": e.days_since_end.map(r6),
        }),
    );
    out
}

/// What was missing for a pair, as the breakdown lists it.
fn missing_list(
    s: &CompiledSponsor,
    e: &CompiledEvent,
    ev: &PairEval,
    s_emb: bool,
    e_emb: bool,
) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !s.has_profile {
        missing.push("sponsor_profile");
    }
    if ev.budget_source == BudgetSource::Missing {
        missing.push(if s.annual_budget_cents.is_none() {
            "annual_budget_cents"
        } else {
            "comparable_package_prices"
        });
    }
    if ev.age_overlap.is_none() && ev.region_share.is_none() && ev.interest_match.is_none() {
        missing.push("audience_data");
    }
    if ev.geo_rule == GeoRule::NoSponsorRegions {
        missing.push("regions");
    }
    if e.city.is_none() && e.country.is_none() {
        missing.push("event_location");
    }
    if e.quality.is_none() {
        missing.push("quality_score");
    }
    if !s_emb {
        missing.push("objectives_embedding");
    }
    if !e_emb {
        missing.push("description_embedding");
    }
    missing
}

/// The compact form stored in `sponsorship_matches.overlap_metrics` for every scored pair:
/// the factor values (the old top-level keys), what was missing and the versions — the top
/// level of the full breakdown, without `factors` and `temporal`. The full explanation of a
/// stored pair is one `fn_compute_match_score` call away.
pub fn compact(
    world: &World,
    s: &CompiledSponsor,
    e: &CompiledEvent,
    ev: &PairEval,
    w: &Weights,
    s_emb: bool,
    e_emb: bool,
) -> Value {
    json!({
        "score": round5(ev.score),
        "budget_fit": r6(ev.budget_fit),
        "audience_overlap": r6(ev.audience_overlap),
        "geo_fit": r6(ev.geo_fit),
        "engagement_quality": r6(ev.engagement_quality),
        "objectives_similarity": r6(ev.objectives_similarity),
        "temporal_fit": r6(ev.temporal_fit),
        "weighted_sum": r6(ev.weighted_sum),
        "event_quality_tier": e.tier.map(|t| world.tiers.name(t)),
        "sponsor_budget_range": budget_range(s.annual_budget_cents),
        "objectives_similarity_neutral": ev.cosine.is_none(),
        "missing": missing_list(s, e, ev, s_emb, e_emb),
        "weights_version": w.version,
        "model_version": MODEL_VERSION,
    })
}
