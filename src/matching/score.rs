//! The match formula. Sponsors and events are first *compiled*: strings become ids in
//! shared vocabularies, shares are normalized, embeddings unit-length. Scoring a compiled
//! pair then touches only numbers and bit sets, which is what lets the batch kernel score
//! millions of pairs a second — and the per-pair SQL function compiles a one-sponsor,
//! one-event world and runs this very code, so both give identical results.
//!
//! Factors (each in [0,1]; `NEUTRAL` with a flag when its data is missing):
//! - budget_fit: the sponsor's per-event budget (`BUDGET_SHARE_PER_EVENT` of the annual
//!   budget) against the event's active packages in the sponsor's currency:
//!   `0.6 · min(1, budget / cheapest) + 0.4 · mean(min(1, budget / price))`; an event with
//!   no such package is compared with the median package price of events of its quality tier.
//! - audience_overlap: weighted mean of the available signals — age (histogram intersection
//!   of target and measured age shares, weight 0.4), regions (share of attendees from places
//!   the sponsor targets, 0.3), interests (event category among the sponsor's interests and
//!   preferred categories, 0.3).
//! - geo_fit: 1 when a sponsor region is `global`, the event's city or its country; 0.5 when a
//!   region is a city in the event's country; else 0.
//! - engagement_quality: the event's quality score.
//! - objectives_similarity: cosine of the objectives and description embeddings, clamped at 0.
//! - temporal_fit (a multiplier): 1 until the event ends, then halving every
//!   `TEMPORAL_HALF_LIFE_DAYS`, never below `TEMPORAL_FLOOR`.

use std::collections::HashMap;

use super::model::{days_until, norm, EventInput, MarketContext, SponsorInput, Weights};

pub const MODEL_VERSION: &str = "sponsorship-match/1";
pub const NEUTRAL: f64 = 0.5;
pub const BUDGET_SHARE_PER_EVENT: f64 = 0.25;
pub const CHEAPEST_PACKAGE_WEIGHT: f64 = 0.6;
pub const AGE_WEIGHT: f64 = 0.4;
pub const REGION_WEIGHT: f64 = 0.3;
pub const INTEREST_WEIGHT: f64 = 0.3;
pub const SAME_COUNTRY_GEO_FIT: f64 = 0.5;
pub const TEMPORAL_HALF_LIFE_DAYS: f64 = 30.0;
pub const TEMPORAL_FLOOR: f64 = 0.1;

/// Strings to dense ids.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(s.to_owned(), id);
        self.names.push(s.to_owned());
        id
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A small growable bit set over interned ids.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BitSet(Vec<u64>);

impl BitSet {
    pub fn insert(&mut self, id: u32) {
        let (w, b) = ((id / 64) as usize, id % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        let (w, b) = ((id / 64) as usize, id % 64);
        self.0.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    #[inline]
    pub fn intersects(&self, other: &BitSet) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, word)| {
            (0..64)
                .filter(move |b| word & (1u64 << b) != 0)
                .map(move |b| (w * 64 + b) as u32)
        })
    }
}

/// The vocabularies and marketplace facts shared by a set of compiled sponsors and events.
#[derive(Debug, Default, Clone)]
pub struct World {
    pub places: Interner,
    pub segments: Interner,
    pub categories: Interner,
    pub currencies: Interner,
    pub tiers: Interner,
    /// Place ids that some sponsor targets as an audience region (matched against the keys
    /// of events' geo distributions).
    region_targets: Vec<(u32, String)>,
    /// Median package price by [tier id][currency id] (a dense table: it is read for every
    /// pair whose event sells nothing in the sponsor's currency).
    tier_median: Vec<Vec<Option<i64>>>,
    /// city place id -> country place ids.
    city_countries: HashMap<u32, Vec<u32>>,
}

#[derive(Debug, Clone)]
pub struct CompiledSponsor {
    pub has_profile: bool,
    pub annual_budget_cents: Option<i64>,
    pub budget_per_event: Option<f64>,
    pub currency: u32,
    /// Normalized target age shares, dense over `World::segments` (shorter means 0).
    pub age: Vec<f64>,
    pub has_age: bool,
    pub audience_global: bool,
    pub audience_regions: BitSet,
    pub has_audience_regions: bool,
    pub interests: BitSet,
    pub has_interests: bool,
    pub geo_global: bool,
    pub geo_places: BitSet,
    pub has_geo: bool,
    /// Countries of the cities the sponsor names in `regions`.
    pub countries_of_cities: BitSet,
}

#[derive(Debug, Clone)]
pub struct CompiledEvent {
    pub category: Option<u32>,
    pub city: Option<u32>,
    pub country: Option<u32>,
    pub has_insights: bool,
    /// Normalized measured age shares, in segment-name order.
    pub age: Vec<(u32, f64)>,
    /// Geo distribution entries: the audience-region targets each place matches, and its share.
    pub geo: Vec<(BitSet, f64)>,
    pub geo_keys: Vec<String>,
    pub quality: Option<f64>,
    pub tier: Option<u32>,
    pub packages: Vec<(i64, u32)>,
    pub starts_in_days: f64,
    pub days_since_end: Option<f64>,
    pub temporal: f64,
    /// Start and end (or start) as epoch seconds, when the input had them.
    pub start_epoch: Option<f64>,
    pub end_epoch: Option<f64>,
}

/// Days since the end of an event (None while it has not ended), given the days to its
/// end (or to its start when it has no end).
fn days_since(ends_in_days: f64) -> Option<f64> {
    (ends_in_days < 0.0).then_some(-ends_in_days)
}

impl CompiledEvent {
    /// The timing of this event as seen at `now_epoch`, computed exactly as a fresh load at
    /// that moment would compute it (a no-op for inputs without epochs).
    pub fn retime(&mut self, now_epoch: f64) {
        let Some(start) = self.start_epoch else {
            return;
        };
        self.starts_in_days = days_until(start, now_epoch);
        let ends = days_until(self.end_epoch.unwrap_or(start), now_epoch);
        self.days_since_end = days_since(ends);
        self.temporal = temporal_fit(self.days_since_end);
    }
}

impl World {
    pub fn new(ctx: &MarketContext) -> World {
        let mut w = World::default();
        for ((tier, currency), price) in &ctx.tier_median_price {
            let t = w.tiers.id(&norm(tier));
            let c = w.currencies.id(currency.trim());
            let (t, c) = (t as usize, c as usize);
            if w.tier_median.len() <= t {
                w.tier_median.resize(t + 1, Vec::new());
            }
            if w.tier_median[t].len() <= c {
                w.tier_median[t].resize(c + 1, None);
            }
            w.tier_median[t][c] = Some(*price);
        }
        for (city, countries) in &ctx.city_countries {
            let c = w.places.id(&norm(city));
            let ids: Vec<u32> = countries.iter().map(|k| w.places.id(&norm(k))).collect();
            w.city_countries.insert(c, ids);
        }
        w
    }

    pub fn tier_median(&self, tier: u32, currency: u32) -> Option<i64> {
        self.tier_median
            .get(tier as usize)
            .and_then(|by_currency| by_currency.get(currency as usize))
            .copied()
            .flatten()
    }

    /// Compile sponsors before events: events' geo keys are matched against the regions
    /// the compiled sponsors target.
    pub fn compile_sponsor(&mut self, s: &SponsorInput) -> CompiledSponsor {
        let currency = self.currencies.id(s.currency.trim());
        let total: f64 = s.target_age.iter().map(|(_, v)| v).sum();
        let mut age = Vec::new();
        if total > 0.0 {
            for (k, v) in &s.target_age {
                let id = self.segments.id(k) as usize;
                if age.len() <= id {
                    age.resize(id + 1, 0.0);
                }
                age[id] = v / total;
            }
        }
        let mut audience_regions = BitSet::default();
        let mut audience_global = false;
        let mut has_audience_regions = false;
        for r in s.audience_regions.iter().chain(&s.regions) {
            has_audience_regions = true;
            if r == "global" {
                audience_global = true;
                continue;
            }
            let id = self.places.id(r);
            if !self.region_targets.iter().any(|(i, _)| *i == id) {
                self.region_targets.push((id, format!(" {r} ")));
            }
            audience_regions.insert(id);
        }
        let mut interests = BitSet::default();
        for c in s.interests.iter().chain(&s.preferred_categories) {
            interests.insert(self.categories.id(c));
        }
        let mut geo_places = BitSet::default();
        let mut countries_of_cities = BitSet::default();
        let mut geo_global = false;
        for r in &s.regions {
            if r == "global" {
                geo_global = true;
                continue;
            }
            let id = self.places.id(r);
            geo_places.insert(id);
            if let Some(countries) = self.city_countries.get(&id) {
                for c in countries {
                    countries_of_cities.insert(*c);
                }
            }
        }
        CompiledSponsor {
            has_profile: s.has_profile,
            annual_budget_cents: s.annual_budget_cents,
            budget_per_event: s
                .annual_budget_cents
                .filter(|b| *b >= 0)
                .map(|b| b as f64 * BUDGET_SHARE_PER_EVENT),
            currency,
            has_age: !age.is_empty(),
            age,
            audience_global,
            has_audience_regions,
            audience_regions,
            has_interests: !(s.interests.is_empty() && s.preferred_categories.is_empty()),
            interests,
            geo_global,
            has_geo: !s.regions.is_empty(),
            geo_places,
            countries_of_cities,
        }
    }

    pub fn compile_event(&mut self, e: &EventInput) -> CompiledEvent {
        let total: f64 = e.age_segments.iter().map(|(_, v)| v).sum();
        let age = if total > 0.0 {
            e.age_segments
                .iter()
                .map(|(k, v)| (self.segments.id(k), v / total))
                .collect()
        } else {
            Vec::new()
        };
        let mut geo = Vec::with_capacity(e.geo_distribution.len());
        let mut geo_keys = Vec::with_capacity(e.geo_distribution.len());
        for (place, share) in &e.geo_distribution {
            let padded = format!(" {} ", words(place));
            let mut matches = BitSet::default();
            for (id, target) in &self.region_targets {
                if padded.contains(target.as_str()) {
                    matches.insert(*id);
                }
            }
            geo.push((matches, *share));
            geo_keys.push(place.clone());
        }
        let days_since_end = days_since(e.ends_in_days.unwrap_or(e.starts_in_days));
        CompiledEvent {
            category: e.category.as_deref().map(|c| self.categories.id(&norm(c))),
            city: e.city.as_deref().map(|c| self.places.id(&norm(c))),
            country: e.country.as_deref().map(|c| self.places.id(&norm(c))),
            has_insights: e.has_insights,
            age,
            geo,
            geo_keys,
            quality: e.quality_score,
            tier: e.quality_tier.as_deref().map(|t| self.tiers.id(&norm(t))),
            packages: e
                .packages
                .iter()
                .map(|(p, c)| (*p, self.currencies.id(c.trim())))
                .collect(),
            starts_in_days: e.starts_in_days,
            days_since_end,
            temporal: temporal_fit(days_since_end),
            start_epoch: e.start_epoch,
            end_epoch: e.end_epoch.or(e.start_epoch),
        }
    }
}

/// Lower-cased words of a place name joined by single spaces ("Elsewhere in US" -> "elsewhere in us").
fn words(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn temporal_fit(days_since_end: Option<f64>) -> f64 {
    match days_since_end {
        None => 1.0,
        Some(d) => 0.5f64.powf(d / TEMPORAL_HALF_LIFE_DAYS).max(TEMPORAL_FLOOR),
    }
}

/// Where budget_fit's comparison prices came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    Packages,
    TierEstimate,
    Missing,
}

/// Every intermediate value of one scored pair; the explanation is built from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairEval {
    pub budget_fit: f64,
    pub budget_source: BudgetSource,
    pub budget_cheapest: Option<i64>,
    pub budget_packages: usize,
    pub audience_overlap: f64,
    pub age_overlap: Option<f64>,
    pub region_share: Option<f64>,
    pub interest_match: Option<f64>,
    pub geo_fit: f64,
    pub geo_rule: GeoRule,
    pub engagement_quality: f64,
    pub objectives_similarity: f64,
    pub cosine: Option<f64>,
    pub temporal_fit: f64,
    pub weighted_sum: f64,
    pub score: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoRule {
    Global,
    City,
    Country,
    SameCountryAsTargetCity,
    NoMatch,
    NoSponsorRegions,
    NoEventLocation,
}

/// Dot product with a fixed summation order, so a pair scores the same whichever way it is
/// reached: with AVX2 and FMA when the CPU has them (chosen once per process), else the
/// portable form. It is most of the batch kernel's time at 384 dimensions.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports the features the function is compiled for.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Four running sums of eight lanes (32 products a step), then a fixed reduction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (k, sum) in acc.iter_mut().enumerate() {
            let x = _mm256_loadu_ps(pa.add(i + 8 * k));
            let y = _mm256_loadu_ps(pb.add(i + 8 * k));
            *sum = _mm256_fmadd_ps(x, y, *sum);
        }
        i += 32;
    }
    while i + 8 <= n {
        let x = _mm256_loadu_ps(pa.add(i));
        let y = _mm256_loadu_ps(pb.add(i));
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let lanes: [f32; 8] = std::mem::transmute(sum);
    let mut total =
        ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    while i < n {
        total += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    total
}

/// Eight running sums, then a fixed reduction.
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Unit-length copy of an embedding in f32 (None for a zero or non-finite vector).
pub fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let n = dot(v, v).sqrt();
    if n == 0.0 || !n.is_finite() {
        return None;
    }
    Some(v.iter().map(|x| x / n).collect())
}

/// Scores one compiled pair. `s_emb` and `e_emb` are unit-length embeddings (or None).
#[inline]
pub fn evaluate(
    world: &World,
    s: &CompiledSponsor,
    s_emb: Option<&[f32]>,
    e: &CompiledEvent,
    e_emb: Option<&[f32]>,
    w: &Weights,
) -> PairEval {
    // budget_fit
    let (budget_fit, budget_source, budget_cheapest, budget_packages) = match s.budget_per_event {
        None => (NEUTRAL, BudgetSource::Missing, None, 0),
        Some(budget) => {
            let mut cheapest: Option<i64> = None;
            let mut sum = 0.0;
            let mut n = 0usize;
            for &(price, currency) in &e.packages {
                if currency != s.currency {
                    continue;
                }
                cheapest = Some(cheapest.map_or(price, |c| c.min(price)));
                sum += afford(budget, price);
                n += 1;
            }
            if let Some(c) = cheapest {
                let fit = CHEAPEST_PACKAGE_WEIGHT * afford(budget, c)
                    + (1.0 - CHEAPEST_PACKAGE_WEIGHT) * (sum / n as f64);
                (fit, BudgetSource::Packages, Some(c), n)
            } else if let Some(median) = e.tier.and_then(|t| world.tier_median(t, s.currency)) {
                (
                    afford(budget, median),
                    BudgetSource::TierEstimate,
                    Some(median),
                    0,
                )
            } else {
                (NEUTRAL, BudgetSource::Missing, None, 0)
            }
        }
    };

    // audience_overlap
    let age_overlap = if s.has_age && !e.age.is_empty() {
        let mut o = 0.0;
        for &(id, share) in &e.age {
            let target = s.age.get(id as usize).copied().unwrap_or(0.0);
            o += share.min(target);
        }
        Some(o.clamp(0.0, 1.0))
    } else {
        None
    };
    let region_share = if s.audience_global {
        Some(1.0)
    } else if s.has_audience_regions && !e.geo.is_empty() {
        let mut share = 0.0;
        for (matches, v) in &e.geo {
            if matches.intersects(&s.audience_regions) {
                share += v;
            }
        }
        Some(share.clamp(0.0, 1.0))
    } else {
        None
    };
    let interest_match = match e.category {
        Some(c) if s.has_interests => Some(if s.interests.contains(c) { 1.0 } else { 0.0 }),
        _ => None,
    };
    let audience_overlap = weighted_mean_of_known(&[
        (age_overlap, AGE_WEIGHT),
        (region_share, REGION_WEIGHT),
        (interest_match, INTEREST_WEIGHT),
    ])
    .unwrap_or(NEUTRAL);

    // geo_fit
    let geo_rule = if !s.has_geo {
        GeoRule::NoSponsorRegions
    } else if s.geo_global {
        GeoRule::Global
    } else if e.city.is_none() && e.country.is_none() {
        GeoRule::NoEventLocation
    } else if e.city.is_some_and(|c| s.geo_places.contains(c)) {
        GeoRule::City
    } else if e.country.is_some_and(|c| s.geo_places.contains(c)) {
        GeoRule::Country
    } else if e.country.is_some_and(|c| s.countries_of_cities.contains(c)) {
        GeoRule::SameCountryAsTargetCity
    } else {
        GeoRule::NoMatch
    };
    let geo_fit = match geo_rule {
        GeoRule::Global | GeoRule::City | GeoRule::Country => 1.0,
        GeoRule::SameCountryAsTargetCity => SAME_COUNTRY_GEO_FIT,
        GeoRule::NoMatch => 0.0,
        GeoRule::NoSponsorRegions | GeoRule::NoEventLocation => NEUTRAL,
    };

    let engagement_quality = e.quality.map_or(NEUTRAL, |q| q.clamp(0.0, 1.0));

    let cosine = match (s_emb, e_emb) {
        (Some(a), Some(b)) if a.len() == b.len() => Some((dot(a, b) as f64).clamp(-1.0, 1.0)),
        _ => None,
    };
    let objectives_similarity = cosine.map_or(NEUTRAL, |c| c.max(0.0));

    let weighted_sum = w.budget_fit * budget_fit
        + w.audience_overlap * audience_overlap
        + w.geo_fit * geo_fit
        + w.engagement_quality * engagement_quality
        + w.objectives_similarity * objectives_similarity;
    let score = (weighted_sum * e.temporal).clamp(0.0, 1.0);

    PairEval {
        budget_fit,
        budget_source,
        budget_cheapest,
        budget_packages,
        audience_overlap,
        age_overlap,
        region_share,
        interest_match,
        geo_fit,
        geo_rule,
        engagement_quality,
        objectives_similarity,
        cosine,
        temporal_fit: e.temporal,
        weighted_sum,
        score,
    }
}

#[inline]
fn afford(budget: f64, price: i64) -> f64 {
    if price <= 0 {
        1.0
    } else {
        (budget / price as f64).min(1.0)
    }
}

/// Weighted mean of the signals that are known (`Some`); None when none is.
pub fn weighted_mean_of_known(signals: &[(Option<f64>, f64)]) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for &(v, w) in signals {
        if let Some(v) = v {
            num += v * w;
            den += w;
        }
    }
    (den > 0.0).then(|| num / den)
}

/// The score as stored: numeric(6,5).
pub fn round5(x: f64) -> f64 {
    (x * 100_000.0).round() / 100_000.0
}
