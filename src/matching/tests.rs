//! Hand-computed expectations for crafted pairs, and the batch kernel agreeing with the
//! per-pair path.

use std::collections::HashMap;

use super::kernel::Marketplace;
use super::model::{EventInput, MarketContext, SponsorInput, Weights};
use super::score::{BudgetSource, GeoRule, NEUTRAL};

const W: Weights = Weights::DEFAULT;

fn sponsor() -> SponsorInput {
    SponsorInput {
        id: [1; 16],
        has_profile: true,
        annual_budget_cents: Some(4_000_000),
        currency: "USD".into(),
        target_age: vec![("25-34".into(), 1.0)],
        interests: vec!["music".into()],
        audience_regions: vec![],
        preferred_categories: vec![],
        regions: vec!["austin".into()],
        embedding: Some(vec![1.0, 2.0, 3.0]),
    }
}

fn event() -> EventInput {
    EventInput {
        id: [2; 16],
        category: Some("Music".into()),
        city: Some("Austin".into()),
        country: Some("US".into()),
        starts_in_days: 10.0,
        ends_in_days: Some(11.0),
        start_epoch: None,
        end_epoch: None,
        has_insights: true,
        age_segments: vec![("25-34".into(), 1.0)],
        geo_distribution: vec![("Austin".into(), 1.0)],
        quality_score: Some(1.0),
        quality_tier: Some("premium".into()),
        packages: vec![(500_000, "USD".into()), (800_000, "USD".into())],
        embedding: Some(vec![2.0, 4.0, 6.0]),
    }
}

fn pair(s: &SponsorInput, e: &EventInput, ctx: &MarketContext) -> super::score::PairEval {
    Marketplace::build(ctx, std::slice::from_ref(s), std::slice::from_ref(e)).eval(0, 0, &W)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn a_perfect_pair_scores_one_on_every_factor() {
    let ev = pair(&sponsor(), &event(), &MarketContext::default());
    assert_eq!(ev.budget_fit, 1.0);
    assert_eq!(ev.audience_overlap, 1.0);
    assert_eq!(ev.geo_fit, 1.0);
    assert_eq!(ev.engagement_quality, 1.0);
    assert!(close(ev.objectives_similarity, 1.0));
    assert_eq!(ev.temporal_fit, 1.0);
    assert!(close(ev.score, 1.0));
}

#[test]
fn budget_fit_is_continuous_in_the_per_event_budget() {
    // per-event budget = 1,000,000 / 4 = 250,000 against packages of 500,000 and 1,000,000:
    // 0.6 * (250k/500k) + 0.4 * mean(0.5, 0.25) = 0.30 + 0.15
    let mut s = sponsor();
    s.annual_budget_cents = Some(1_000_000);
    let mut e = event();
    e.packages = vec![(500_000, "USD".into()), (1_000_000, "USD".into())];
    let ev = pair(&s, &e, &MarketContext::default());
    assert_eq!(ev.budget_source, BudgetSource::Packages);
    assert!(close(ev.budget_fit, 0.45), "{}", ev.budget_fit);
    // a slightly bigger budget gives a slightly better fit: no step
    s.annual_budget_cents = Some(1_040_000);
    let ev2 = pair(&s, &e, &MarketContext::default());
    assert!(ev2.budget_fit > ev.budget_fit && ev2.budget_fit < 0.48);
    // a zero budget affords nothing
    s.annual_budget_cents = Some(0);
    assert_eq!(pair(&s, &e, &MarketContext::default()).budget_fit, 0.0);
}

#[test]
fn budget_without_packages_uses_the_tier_median_and_otherwise_is_neutral() {
    let mut s = sponsor();
    s.annual_budget_cents = Some(800_000); // 200,000 per event
    let mut e = event();
    e.packages.clear();
    e.quality_tier = Some("high".into());
    let mut ctx = MarketContext::default();
    ctx.tier_median_price
        .insert(("high".into(), "USD".into()), 400_000);
    let ev = pair(&s, &e, &ctx);
    assert_eq!(ev.budget_source, BudgetSource::TierEstimate);
    assert!(close(ev.budget_fit, 0.5));

    // packages only in another currency and no median in the sponsor's: neutral, flagged
    let mut eur = sponsor();
    eur.currency = "EUR".into();
    let ev = pair(&eur, &event(), &MarketContext::default());
    assert_eq!(ev.budget_source, BudgetSource::Missing);
    assert_eq!(ev.budget_fit, NEUTRAL);
}

#[test]
fn audience_overlap_combines_age_regions_and_interests_that_are_available() {
    let mut s = sponsor();
    s.target_age = vec![("18-24".into(), 0.5), ("25-34".into(), 0.5)];
    s.interests.clear();
    s.regions = vec!["us".into()];
    let mut e = event();
    e.age_segments = vec![("25-34".into(), 0.6), ("35-44".into(), 0.4)];
    e.geo_distribution = vec![
        ("Austin".into(), 0.7),
        ("Elsewhere in US".into(), 0.2),
        ("International".into(), 0.1),
    ];
    let ev = pair(&s, &e, &MarketContext::default());
    assert!(close(ev.age_overlap.unwrap(), 0.5));
    assert!(close(ev.region_share.unwrap(), 0.2));
    assert_eq!(ev.interest_match, None);
    // (0.5 * 0.4 + 0.2 * 0.3) / 0.7
    assert!(
        close(ev.audience_overlap, 0.26 / 0.7),
        "{}",
        ev.audience_overlap
    );
}

#[test]
fn an_interest_outside_the_event_category_counts_zero() {
    let mut s = sponsor();
    s.target_age.clear();
    s.regions.clear();
    s.interests = vec!["tech".into()];
    let ev = pair(&s, &event(), &MarketContext::default());
    assert_eq!(ev.interest_match, Some(0.0));
    assert_eq!(ev.audience_overlap, 0.0);
}

#[test]
fn geo_fit_matches_city_country_global_and_same_country_cities() {
    let ctx = MarketContext {
        city_countries: HashMap::from([("dallas".to_string(), vec!["us".to_string()])]),
        ..Default::default()
    };
    let cases = [
        (vec!["AUSTIN"], 1.0, GeoRule::City),
        (vec!["us"], 1.0, GeoRule::Country),
        (vec!["global"], 1.0, GeoRule::Global),
        (vec!["dallas"], 0.5, GeoRule::SameCountryAsTargetCity),
        (vec!["berlin"], 0.0, GeoRule::NoMatch),
        (vec![], NEUTRAL, GeoRule::NoSponsorRegions),
    ];
    for (regions, expected, rule) in cases {
        let s = sponsor().with_lists(vec![], regions.iter().map(|r| r.to_string()).collect());
        let ev = pair(&s, &event(), &ctx);
        assert_eq!(
            (ev.geo_fit, ev.geo_rule),
            (expected, rule),
            "regions {regions:?}"
        );
    }
}

#[test]
fn objectives_similarity_is_the_clamped_cosine_or_neutral_when_missing() {
    let mut e = event();
    e.embedding = Some(vec![-1.0, -2.0, -3.0]);
    let ev = pair(&sponsor(), &e, &MarketContext::default());
    assert!(close(ev.cosine.unwrap(), -1.0));
    assert_eq!(ev.objectives_similarity, 0.0);
    e.embedding = None;
    let ev = pair(&sponsor(), &e, &MarketContext::default());
    assert_eq!((ev.cosine, ev.objectives_similarity), (None, NEUTRAL));
    let mut s = sponsor();
    s.embedding = Some(vec![0.0, 0.0, 0.0]);
    let ev = pair(&s, &event(), &MarketContext::default());
    assert_eq!(
        ev.objectives_similarity, NEUTRAL,
        "a zero vector has no direction"
    );
}

#[test]
fn past_events_are_discounted_by_time_since_they_ended() {
    let mut e = event();
    e.starts_in_days = -31.0;
    e.ends_in_days = Some(-30.0);
    let ev = pair(&sponsor(), &e, &MarketContext::default());
    assert!(close(ev.temporal_fit, 0.5));
    assert!(close(ev.score, ev.weighted_sum * 0.5));
    e.ends_in_days = Some(-300.0);
    assert!(close(
        pair(&sponsor(), &e, &MarketContext::default()).temporal_fit,
        0.1
    ));
    // an event under way (started, not ended) is not discounted
    e.starts_in_days = -1.0;
    e.ends_in_days = Some(1.0);
    assert_eq!(
        pair(&sponsor(), &e, &MarketContext::default()).temporal_fit,
        1.0
    );
}

#[test]
fn a_pair_with_no_data_scores_neutral_and_says_what_is_missing() {
    let s = SponsorInput {
        id: [9; 16],
        currency: "USD".into(),
        ..Default::default()
    };
    let e = EventInput {
        id: [8; 16],
        starts_in_days: 5.0,
        ..Default::default()
    };
    let m = Marketplace::build(&MarketContext::default(), &[s], &[e]);
    let (ev, b) = m.explain(0, 0, &W);
    assert!(close(ev.score, 0.5));
    let missing: Vec<&str> = b["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for m in [
        "sponsor_profile",
        "annual_budget_cents",
        "audience_data",
        "regions",
        "event_location",
        "quality_score",
        "objectives_embedding",
        "description_embedding",
    ] {
        assert!(missing.contains(&m), "{m} missing from {missing:?}");
    }
    assert_eq!(b["objectives_similarity_neutral"], true);
}

#[test]
fn the_breakdown_names_value_weight_and_contribution_of_each_factor() {
    let m = Marketplace::build(&MarketContext::default(), &[sponsor()], &[event()]);
    let (ev, b) = m.explain(0, 0, &W);
    let mut total = 0.0;
    for (name, weight) in [
        ("budget_fit", 0.30),
        ("audience_overlap", 0.25),
        ("geo_fit", 0.15),
        ("engagement_quality", 0.20),
        ("objectives_similarity", 0.10),
    ] {
        let f = &b["factors"][name];
        assert_eq!(f["weight"].as_f64().unwrap(), weight);
        let (v, c) = (
            f["value"].as_f64().unwrap(),
            f["contribution"].as_f64().unwrap(),
        );
        assert!(close(c, v * weight));
        assert_eq!(
            b[name].as_f64().unwrap(),
            v,
            "top-level {name} kept for old callers"
        );
        total += c;
    }
    assert!(close(total * ev.temporal_fit, ev.score));
    assert_eq!(
        b["factors"]["geo_fit"]["inputs"]["rule"],
        "event city is a sponsor region"
    );
    assert_eq!(
        b["factors"]["budget_fit"]["inputs"]["cheapest_package_cents"],
        500_000
    );
    assert_eq!(b["event_quality_tier"], "premium");
}

/// A small deterministic generator for varied marketplaces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() * xs.len() as f64) as usize % xs.len()]
    }
}

fn random_marketplace(
    ns: usize,
    ne: usize,
    seed: u64,
) -> (MarketContext, Vec<SponsorInput>, Vec<EventInput>) {
    let mut r = Lcg(seed);
    let cities = ["Austin", "Berlin", "Paris", "Tokyo", "Dallas"];
    let countries = ["US", "DE", "FR", "JP", "US"];
    let cats = ["music", "tech", "sports", "food"];
    let segs = ["18-24", "25-34", "35-44", "45-54"];
    let dims = 16;
    let mut ctx = MarketContext::default();
    for (c, k) in cities.iter().zip(countries) {
        ctx.city_countries
            .insert(c.to_lowercase(), vec![k.to_lowercase()]);
    }
    ctx.tier_median_price
        .insert(("high".into(), "USD".into()), 300_000);
    let sponsors = (0..ns)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SponsorInput {
                id,
                has_profile: r.next() < 0.95,
                annual_budget_cents: (r.next() < 0.9).then(|| (r.next() * 5_000_000.0) as i64),
                currency: r.pick(&["USD", "USD", "EUR"]).into(),
                target_age: {
                    let mut v = Vec::new();
                    for s in segs {
                        if r.next() < 0.5 {
                            v.push((s.to_string(), r.next()));
                        }
                    }
                    v
                },
                interests: cats
                    .iter()
                    .filter(|_| r.next() < 0.3)
                    .map(|s| s.to_string())
                    .collect(),
                audience_regions: vec![],
                preferred_categories: cats
                    .iter()
                    .filter(|_| r.next() < 0.3)
                    .map(|s| s.to_string())
                    .collect(),
                regions: if r.next() < 0.1 {
                    vec!["global".into()]
                } else {
                    vec![r
                        .pick(&["austin", "us", "berlin", "dallas", "fr"])
                        .to_string()]
                },
                embedding: (r.next() < 0.8)
                    .then(|| (0..dims).map(|_| r.next() as f32 - 0.5).collect()),
            }
        })
        .collect();
    let events = (0..ne)
        .map(|j| {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&(j as u64).to_le_bytes());
            let c = (r.next() * cities.len() as f64) as usize % cities.len();
            EventInput {
                id,
                category: Some(r.pick(&cats).into()),
                city: Some(cities[c].into()),
                country: Some(countries[c].into()),
                starts_in_days: r.next() * 400.0 - 200.0,
                ends_in_days: None,
                start_epoch: None,
                end_epoch: None,
                has_insights: true,
                age_segments: {
                    let mut v = Vec::new();
                    for s in segs {
                        if r.next() < 0.7 {
                            v.push((s.to_string(), r.next()));
                        }
                    }
                    v
                },
                geo_distribution: vec![
                    (cities[c].into(), 0.6),
                    (format!("Elsewhere in {}", countries[c]), 0.3),
                ],
                quality_score: (r.next() < 0.9).then(|| r.next()),
                quality_tier: Some(r.pick(&["high", "low"]).into()),
                packages: (0..(r.next() * 4.0) as usize)
                    .map(|_| {
                        (
                            (r.next() * 1_000_000.0) as i64,
                            r.pick(&["USD", "EUR"]).to_string(),
                        )
                    })
                    .collect(),
                embedding: (r.next() < 0.8)
                    .then(|| (0..dims).map(|_| r.next() as f32 - 0.5).collect()),
            }
        })
        .collect();
    (ctx, sponsors, events)
}

#[test]
fn batch_scores_are_identical_to_per_pair_scores() {
    let (ctx, sponsors, events) = random_marketplace(40, 60, 7);
    let m = Marketplace::build(&ctx, &sponsors, &events);
    for (si, s) in sponsors.iter().enumerate() {
        for (ei, e) in events.iter().enumerate() {
            let alone = Marketplace::build(&ctx, std::slice::from_ref(s), std::slice::from_ref(e));
            assert_eq!(
                m.eval(si, ei, &W),
                alone.eval(0, 0, &W),
                "pair ({si}, {ei})"
            );
        }
    }
}

#[test]
fn top_matches_agree_with_sorting_every_score() {
    let (ctx, sponsors, events) = random_marketplace(70, 300, 11);
    let m = Marketplace::build(&ctx, &sponsors, &events);
    let k = 5;
    let top = m.top_matches(k, &W);
    assert_eq!(top.pairs_scored, 70 * 300);
    for ei in 0..events.len() {
        let mut all: Vec<(usize, f64)> = (0..sponsors.len())
            .map(|si| (si, m.eval(si, ei, &W).score))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        assert_eq!(top.per_event[ei], all, "event {ei}");
    }
    for si in 0..sponsors.len() {
        let mut all: Vec<(usize, f64)> = (0..events.len())
            .map(|ei| (ei, m.eval(si, ei, &W).score))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        assert_eq!(top.per_sponsor[si], all, "sponsor {si}");
    }
}

#[test]
fn every_score_stays_in_the_unit_interval() {
    let (ctx, sponsors, events) = random_marketplace(30, 100, 3);
    let m = Marketplace::build(&ctx, &sponsors, &events);
    for si in 0..sponsors.len() {
        for ev in m.score_sponsor(si, &W) {
            for v in [
                ev.budget_fit,
                ev.audience_overlap,
                ev.geo_fit,
                ev.engagement_quality,
                ev.objectives_similarity,
                ev.temporal_fit,
                ev.score,
            ] {
                assert!((0.0..=1.0).contains(&v), "{v}");
            }
        }
    }
}

#[test]
fn the_stored_compact_breakdown_is_the_top_level_of_the_full_one() {
    let (ctx, sponsors, events) = random_marketplace(10, 10, 5);
    let m = Marketplace::build(&ctx, &sponsors, &events);
    for si in 0..10 {
        for ei in 0..10 {
            let (_, full) = m.explain(si, ei, &W);
            let (_, compact) = m.compact(si, ei, &W);
            for (k, v) in compact.as_object().unwrap() {
                assert_eq!(&full[k], v, "{k}");
            }
            assert!(compact.get("factors").is_none());
        }
    }
}

/// An event as a loader builds it at `now`: days computed from the epochs.
fn event_at(start: f64, end: Option<f64>, now: f64) -> EventInput {
    use super::model::days_until;
    EventInput {
        starts_in_days: days_until(start, now),
        ends_in_days: end.map(|e| days_until(e, now)),
        start_epoch: Some(start),
        end_epoch: end,
        ..event()
    }
}

#[test]
fn a_compiled_event_retimed_later_equals_one_compiled_then() {
    let start = 1_800_000_000.25;
    let end = Some(start + 3.0 * 86_400.0);
    let then = start + 40.0 * 86_400.0 + 0.123_456;
    for (now0, end) in [(start - 86_400.0, end), (start - 5.0, None), (start + 10.0, end)] {
        let early = Marketplace::build(&MarketContext::default(), &[sponsor()], &[event_at(start, end, now0)]);
        let fresh = Marketplace::build(&MarketContext::default(), &[sponsor()], &[event_at(start, end, then)]);
        let mut retimed = early.events[0].clone();
        retimed.retime(then);
        let f = &fresh.events[0];
        assert_eq!(retimed.starts_in_days.to_bits(), f.starts_in_days.to_bits());
        assert_eq!(retimed.days_since_end.map(f64::to_bits), f.days_since_end.map(f64::to_bits));
        assert_eq!(retimed.temporal.to_bits(), f.temporal.to_bits());
        assert!(retimed.temporal < 1.0, "the event has ended by then");
    }
}

#[test]
fn retiming_an_event_without_epochs_changes_nothing() {
    let m = Marketplace::build(&MarketContext::default(), &[sponsor()], &[event()]);
    let mut e = m.events[0].clone();
    e.retime(4_000_000_000.0);
    assert_eq!(e.temporal, m.events[0].temporal);
    assert_eq!(e.starts_in_days, m.events[0].starts_in_days);
}

#[test]
fn the_fast_dot_product_agrees_with_the_portable_one_at_every_length() {
    use super::score::{dot, dot_portable};
    let mut seed = 7u64;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    for n in [0usize, 1, 3, 7, 8, 9, 31, 32, 33, 100, 384, 385, 1000] {
        let a: Vec<f32> = (0..n).map(|_| next()).collect();
        let b: Vec<f32> = (0..n).map(|_| next()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let (fast, portable) = (dot(&a, &b) as f64, dot_portable(&a, &b) as f64);
        assert!((fast - exact).abs() < 1e-4, "n={n}: {fast} vs {exact}");
        assert!((portable - exact).abs() < 1e-4, "n={n}: {portable} vs {exact}");
        // the same inputs always give the same bits
        assert_eq!(dot(&a, &b).to_bits(), dot(&a, &b).to_bits());
    }
}

// Property tests: any input the loaders can hand the matcher (and some they cannot: negative
// budgets and prices, negative or enormous shares, extreme dates, vectors of any length and
// magnitude, quality outside [0, 1]) scores every factor and the total inside [0, 1], finite,
// and the batch kernel agrees with the per-pair path on it.
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn share() -> impl Strategy<Value = f64> {
        prop_oneof![
            0.0..=1.0f64,
            -1.0e6..1.0e6f64,
            Just(0.0),
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::MIN_POSITIVE),
        ]
    }

    fn money() -> impl Strategy<Value = i64> {
        prop_oneof![
            0..10_000_000i64,
            any::<i64>(),
            Just(0),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
    }

    fn days() -> impl Strategy<Value = f64> {
        prop_oneof![-800.0..800.0f64, -1.0e12..1.0e12f64, Just(0.0), Just(-0.0)]
    }

    fn embedding(dims: usize) -> impl Strategy<Value = Option<Vec<f32>>> {
        let element = prop_oneof![
            -1.0..1.0f32,
            -f32::MAX..f32::MAX,
            Just(0.0f32),
            Just(f32::MAX),
            Just(-f32::MAX),
            Just(f32::MIN_POSITIVE),
        ];
        // Mostly the marketplace's dimension; sometimes another (such pairs have no cosine).
        let len = prop_oneof![4 => Just(dims), 1 => 1..(dims + 3)];
        proptest::option::of(len.prop_flat_map(move |n| proptest::collection::vec(element.clone(), n)))
    }

    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("austin".to_string()),
            Just("us".to_string()),
            Just("global".to_string()),
            Just("music".to_string()),
            Just("25-34".to_string()),
            Just("Elsewhere in US".to_string()),
            Just("".to_string()),
            "[a-zA-Z \\-]{0,12}",
        ]
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, f64)>> {
        proptest::collection::vec((label(), share()), 0..5)
    }

    fn labels() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(label(), 0..4)
    }

    fn currency() -> impl Strategy<Value = String> {
        prop_oneof![Just("USD".to_string()), Just("EUR".to_string()), Just(" usd ".to_string())]
    }

    prop_compose! {
        fn sponsor_input(dims: usize)(
            has_profile in any::<bool>(),
            annual_budget_cents in proptest::option::of(money()),
            currency in currency(),
            target_age in pairs(),
            interests in labels(),
            audience_regions in labels(),
            preferred_categories in labels(),
            regions in labels(),
            embedding in embedding(dims),
        ) -> SponsorInput {
            SponsorInput {
                id: [7; 16], has_profile, annual_budget_cents, currency, target_age, interests,
                audience_regions, preferred_categories, regions, embedding,
            }
        }
    }

    prop_compose! {
        fn event_input(dims: usize)(
            category in proptest::option::of(label()),
            city in proptest::option::of(label()),
            country in proptest::option::of(label()),
            starts_in_days in days(),
            ends_in_days in proptest::option::of(days()),
            has_insights in any::<bool>(),
            age_segments in pairs(),
            geo_distribution in pairs(),
            quality_score in proptest::option::of(prop_oneof![0.0..=1.0f64, -1.0e9..1.0e9f64]),
            quality_tier in proptest::option::of(label()),
            packages in proptest::collection::vec((money(), currency()), 0..4),
            embedding in embedding(dims),
        ) -> EventInput {
            EventInput {
                id: [9; 16], category, city, country, starts_in_days, ends_in_days,
                start_epoch: None, end_epoch: None, has_insights, age_segments,
                geo_distribution, quality_score, quality_tier, packages, embedding,
            }
        }
    }

    fn weights() -> impl Strategy<Value = Weights> {
        proptest::collection::vec(0.0..1.0f64, 5).prop_filter_map("all zero", |raw| {
            let sum: f64 = raw.iter().sum();
            if sum <= 0.0 {
                return None;
            }
            let w: Vec<f64> = raw.iter().map(|v| v / sum).collect();
            Weights::new(1, w[0], w[1], w[2], w[3], w[4]).ok()
        })
    }

    fn context() -> impl Strategy<Value = MarketContext> {
        (money(), money()).prop_map(|(usd, eur)| {
            let mut ctx = MarketContext::default();
            ctx.city_countries.insert("austin".into(), vec!["us".into()]);
            ctx.tier_median_price.insert(("premium".into(), "USD".into()), usd);
            ctx.tier_median_price.insert(("austin".into(), "EUR".into()), eur);
            ctx
        })
    }

    fn assert_unit(ev: &super::super::score::PairEval) -> Result<(), TestCaseError> {
        for (name, v) in [
            ("budget_fit", ev.budget_fit),
            ("audience_overlap", ev.audience_overlap),
            ("geo_fit", ev.geo_fit),
            ("engagement_quality", ev.engagement_quality),
            ("objectives_similarity", ev.objectives_similarity),
            ("temporal_fit", ev.temporal_fit),
            ("score", ev.score),
        ] {
            prop_assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{name} = {v} in {ev:?}");
        }
        for (name, v) in [
            ("age_overlap", ev.age_overlap),
            ("region_share", ev.region_share),
            ("interest_match", ev.interest_match),
        ] {
            if let Some(v) = v {
                prop_assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{name} = {v}");
            }
        }
        if let Some(c) = ev.cosine {
            prop_assert!(c.is_finite() && (-1.0..=1.0).contains(&c), "cosine = {c}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn every_factor_and_score_is_in_the_unit_interval_for_any_input(
            ctx in context(),
            sponsors in proptest::collection::vec(sponsor_input(6), 1..4),
            events in proptest::collection::vec(event_input(6), 1..4),
            w in weights(),
        ) {
            let m = Marketplace::build(&ctx, &sponsors, &events);
            for si in 0..sponsors.len() {
                for ei in 0..events.len() {
                    let ev = m.eval(si, ei, &w);
                    assert_unit(&ev)?;
                    // The stored score (numeric(6,5)) stays in range too.
                    let stored = super::super::score::round5(ev.score);
                    prop_assert!((0.0..=1.0).contains(&stored));
                    // Batch and per-pair paths agree on any input.
                    let alone = Marketplace::build(
                        &ctx,
                        std::slice::from_ref(&sponsors[si]),
                        std::slice::from_ref(&events[ei]),
                    );
                    prop_assert_eq!(ev, alone.eval(0, 0, &w));
                }
            }
            // The top lists hold only in-range scores and every pair was scored.
            let top = m.top_matches(2, &w);
            prop_assert_eq!(top.pairs_scored, (sponsors.len() * events.len()) as u64);
            for list in top.per_event.iter().chain(&top.per_sponsor) {
                for &(_, s) in list {
                    prop_assert!((0.0..=1.0).contains(&s));
                }
            }
        }

        #[test]
        fn the_explanation_of_any_pair_is_valid_json_with_factors_in_range(
            ctx in context(),
            s in sponsor_input(6),
            e in event_input(6),
        ) {
            let m = Marketplace::build(&ctx, std::slice::from_ref(&s), std::slice::from_ref(&e));
            let (ev, b) = m.explain(0, 0, &W);
            assert_unit(&ev)?;
            // It survives a trip through text (no NaN or infinity, which JSON cannot hold).
            let text = serde_json::to_string(&b).unwrap();
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            for f in ["budget_fit", "audience_overlap", "geo_fit", "engagement_quality", "objectives_similarity"] {
                let v = back["factors"][f]["value"].as_f64();
                prop_assert!(v.is_some_and(|v| (0.0..=1.0).contains(&v)), "{f}: {:?}", back["factors"][f]);
                prop_assert_eq!(back[f].as_f64(), v);
            }
            let (_, compact) = m.compact(0, 0, &W);
            prop_assert!(serde_json::to_string(&compact).is_ok());
        }
    }
}
