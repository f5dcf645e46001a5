//! The matching API: per-pair scores with explanations, and batch scoring in one call.

use std::time::Instant;

use pgrx::prelude::*;
use pgrx::{AnyNumeric, Uuid};

use super::jsonb::Jsonb;
use super::load::{self, LoadError};
use super::match_cache;
use crate::error::OrRaise;
use crate::matching::kernel::Marketplace;
use crate::matching::model::{SponsorInput, Weights};
use crate::matching::score::round5;

/// A score as numeric with five decimals (the stored `numeric(6,5)`), built without text.
pub fn numeric5(x: f64) -> AnyNumeric {
    let scaled = (x * 100_000.0).round() as i64;
    // SAFETY: int64_div_fast_to_numeric returns a palloc'd numeric of scaled / 10^5.
    unsafe {
        let n = pg_sys::int64_div_fast_to_numeric(scaled, 5);
        AnyNumeric::from_datum(pg_sys::Datum::from(n), false).expect("a numeric")
    }
}

/// Everything needed to score one sponsor against one event (one prepared query).
fn load_pair(event_id: Uuid, sponsor_id: Uuid) -> Result<(Marketplace, Weights), LoadError> {
    let (sponsor, event, ctx, w) = load::pair(event_id, sponsor_id)?;
    Ok((Marketplace::build(&ctx, &[sponsor], &[event]), w))
}

/// How well a sponsor fits an event: a score in [0,1] and its explanation.
///
/// Unknown (or invisible) ids raise `no_data_found` (P0002). Served from the backend's
/// compiled marketplace when it holds one that is current (see `match_cache`), else from one
/// query.
#[pg_extern(stable, parallel_safe)]
pub fn fn_compute_match_score(
    p_event_id: Option<Uuid>,
    p_sponsor_id: Option<Uuid>,
) -> TableIterator<'static, (name!(score, AnyNumeric), name!(breakdown, Jsonb))> {
    // not STRICT: a NULL id is an error, not an empty answer
    let (Some(event_id), Some(sponsor_id)) = (p_event_id, p_sponsor_id) else {
        crate::error::raise(
            &crate::error::Plain(
                pgrx::PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "p_event_id and p_sponsor_id must not be NULL".into(),
            ),
            "fn_compute_match_score",
        );
    };
    let (score, b) = score_pair(event_id, sponsor_id).or_raise();
    TableIterator::once((numeric5(score), Jsonb(b)))
}

fn score_pair(event_id: Uuid, sponsor_id: Uuid) -> Result<(f64, serde_json::Value), LoadError> {
    let mut call = match_cache::begin()?;
    if let Some(r) = match_cache::with_whole(&call, |mut whole| {
        let ei = whole.event(event_id)?;
        let si = whole.sponsor(sponsor_id)?;
        let (ev, b) = whole.m.explain(si, ei, &whole.weights);
        Ok::<_, LoadError>((ev.score, b))
    }) {
        return r;
    }
    let started = Instant::now();
    let (m, w) = load_pair(event_id, sponsor_id)?;
    let (ev, b) = m.explain(0, 0, &w);
    match_cache::went_without(&mut call, started.elapsed())?;
    Ok((ev.score, b))
}

/// Ranked (position, score) rows as parallel arrays: ids, scores as numeric(…,5), and
/// breakdowns when asked.
fn ranked_arrays(
    ranked: &[(usize, f64)],
    ids: &[[u8; 16]],
    explain: bool,
    breakdown: impl Fn(usize) -> serde_json::Value,
) -> (Vec<Uuid>, Vec<AnyNumeric>, Vec<Option<Jsonb>>) {
    (
        ranked
            .iter()
            .map(|(i, _)| Uuid::from_bytes(ids[*i]))
            .collect(),
        ranked.iter().map(|(_, score)| numeric5(*score)).collect(),
        ranked
            .iter()
            .map(|(i, _)| explain.then(|| Jsonb(breakdown(*i))))
            .collect(),
    )
}

type RankedArrays = (Vec<Uuid>, Vec<AnyNumeric>, Vec<Option<Jsonb>>);

fn rank_for_event(event_id: Uuid, explain: bool) -> Result<RankedArrays, LoadError> {
    let call = match_cache::begin()?;
    if let Some(r) = match_cache::with_whole(&call, |mut whole| {
        let ei = whole.event(event_id)?;
        let w = whole.weights;
        let m = &*whole.m;
        let ranked = m.rank_sponsors(ei, &w);
        Ok::<_, LoadError>(ranked_arrays(&ranked, &m.sponsor_ids, explain, |si| {
            m.explain(si, ei, &w).1
        }))
    }) {
        return r;
    }
    let events = load::events(Some(&[event_id]))?;
    if events.is_empty() {
        return Err(LoadError::UnknownEvent(event_id));
    }
    let (side, w) = match_cache::sponsor_side(&call)?;
    let m = Marketplace::with_sponsor_side(&side, &events);
    let ranked = m.rank_sponsors(0, &w);
    Ok(ranked_arrays(&ranked, &m.sponsor_ids, explain, |si| {
        m.explain(si, 0, &w).1
    }))
}

fn rank_for_sponsor(sponsor_id: Uuid, explain: bool) -> Result<RankedArrays, LoadError> {
    let mut call = match_cache::begin()?;
    if let Some(r) = match_cache::with_whole_built(&mut call, |whole| {
        let si = whole.sponsor(sponsor_id)?;
        let w = whole.weights;
        let m = &*whole.m;
        let ranked = m.rank_events(si, &w);
        Ok::<_, LoadError>(ranked_arrays(&ranked, &m.event_ids, explain, |ei| {
            m.explain(si, ei, &w).1
        }))
    })? {
        return r;
    }
    // not cacheable here: load this sponsor and every event
    let sponsors = load::sponsors(Some(&[sponsor_id]))?;
    if sponsors.is_empty() {
        return Err(LoadError::UnknownSponsor(sponsor_id));
    }
    let events = load::events(None)?;
    let w = load::weights()?;
    let ctx = load::context(Some(city_names(&sponsors[0])))?;
    let m = Marketplace::build(&ctx, &sponsors, &events);
    let ranked = m.rank_events(0, &w);
    Ok(ranked_arrays(&ranked, &m.event_ids, explain, |ei| {
        m.explain(0, ei, &w).1
    }))
}

/// The sponsor's regions that may be cities (for the same-country rule).
fn city_names(s: &SponsorInput) -> Vec<String> {
    s.regions
        .iter()
        .filter(|r| *r != "global")
        .cloned()
        .collect()
}

/// One event against every sponsor, best first, as parallel arrays (one call of this
/// function however many sponsors; `fn_compute_event_matches` unnests them).
#[pg_extern(stable, parallel_safe)]
pub fn event_match_arrays(
    p_event_id: Uuid,
    p_explain: bool,
) -> TableIterator<
    'static,
    (
        name!(sponsor_ids, Vec<Uuid>),
        name!(scores, Vec<AnyNumeric>),
        name!(breakdowns, Vec<Option<Jsonb>>),
    ),
> {
    TableIterator::once(rank_for_event(p_event_id, p_explain).or_raise())
}

/// One sponsor against every event, best first, as parallel arrays
/// (`fn_compute_sponsor_matches` unnests them).
#[pg_extern(stable, parallel_safe)]
pub fn sponsor_match_arrays(
    p_sponsor_id: Uuid,
    p_explain: bool,
) -> TableIterator<
    'static,
    (
        name!(event_ids, Vec<Uuid>),
        name!(scores, Vec<AnyNumeric>),
        name!(breakdowns, Vec<Option<Jsonb>>),
    ),
> {
    TableIterator::once(rank_for_sponsor(p_sponsor_id, p_explain).or_raise())
}

/// What this backend's compiled-marketplace cache holds and how it has been used.
#[pg_extern(volatile, parallel_unsafe)]
pub fn match_cache_status() -> TableIterator<
    'static,
    (
        name!(sponsors, Option<i64>),
        name!(events, Option<i64>),
        name!(approx_bytes, Option<i64>),
        name!(snapshot_xmin, Option<i64>),
        name!(hits, i64),
        name!(misses, i64),
        name!(sponsor_side_builds, i64),
        name!(whole_builds, i64),
        name!(last_whole_build_ms, Option<f64>),
        name!(next_build_after_ms, f64),
        name!(skipped_too_big, i64),
    ),
> {
    let s = match_cache::status();
    TableIterator::once((
        s.sponsors,
        s.events,
        s.bytes,
        s.snapshot_xmin,
        s.hits,
        s.misses,
        s.sponsor_side_builds,
        s.whole_builds,
        s.last_whole_build_ms,
        s.next_build_after_ms,
        s.skipped_too_big,
    ))
}

/// Drops this backend's compiled-marketplace cache; returns true.
#[pg_extern(volatile, parallel_unsafe)]
pub fn match_cache_reset() -> bool {
    match_cache::clear();
    true
}

/// Loads the whole marketplace once.
pub fn load_marketplace() -> Result<(Marketplace, Weights), LoadError> {
    let sponsors = load::sponsors(None)?;
    let events = load::events(None)?;
    let w = load::weights()?;
    let ctx = load::context(None)?;
    Ok((Marketplace::build(&ctx, &sponsors, &events), w))
}

/// Scores every sponsor against every event in one call; the `p_top_k` best sponsors of each
/// event and best events of each sponsor, as parallel arrays (`fn_compute_match_matrix`
/// unnests them; a pair in both lists appears once, with both ranks).
#[pg_extern(stable, parallel_safe)]
pub fn match_matrix_arrays(
    p_top_k: i32,
) -> TableIterator<
    'static,
    (
        name!(event_ids, Vec<Uuid>),
        name!(sponsor_ids, Vec<Uuid>),
        name!(scores, Vec<f64>),
        name!(ranks_for_event, Vec<Option<i32>>),
        name!(ranks_for_sponsor, Vec<Option<i32>>),
    ),
> {
    if p_top_k < 1 {
        crate::error::raise(
            &crate::error::Plain(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "p_top_k must be at least 1".into(),
            ),
            "fn_compute_match_matrix",
        );
    }
    let (m, w) = load_marketplace().or_raise();
    let top = m.top_matches(p_top_k as usize, &w);
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (ei, si, score, re, rs) in top_pairs(&top) {
        out.0.push(Uuid::from_bytes(m.event_ids[ei]));
        out.1.push(Uuid::from_bytes(m.sponsor_ids[si]));
        out.2.push(round5(score));
        out.3.push(re);
        out.4.push(rs);
    }
    TableIterator::once(out)
}

pub fn top_pairs(
    top: &crate::matching::kernel::TopMatches,
) -> Vec<(usize, usize, f64, Option<i32>, Option<i32>)> {
    use std::collections::HashMap;
    let mut pairs: HashMap<(usize, usize), (f64, Option<i32>, Option<i32>)> = HashMap::new();
    for (ei, list) in top.per_event.iter().enumerate() {
        for (rank, (si, score)) in list.iter().enumerate() {
            pairs.entry((ei, *si)).or_insert((*score, None, None)).1 = Some(rank as i32 + 1);
        }
    }
    for (si, list) in top.per_sponsor.iter().enumerate() {
        for (rank, (ei, score)) in list.iter().enumerate() {
            pairs.entry((*ei, si)).or_insert((*score, None, None)).2 = Some(rank as i32 + 1);
        }
    }
    let mut out: Vec<_> = pairs
        .into_iter()
        .map(|((ei, si), (s, re, rs))| (ei, si, s, re, rs))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.total_cmp(&a.2)).then(a.1.cmp(&b.1)));
    out
}

/// Times the matrix kernel on the live marketplace: loading it, then scoring every pair
/// keeping the `p_top_k` best each way (nothing is written). For capacity planning and the
/// benchmark; service_role only.
#[pg_extern(volatile)]
pub fn match_kernel_benchmark(
    p_top_k: default!(i32, 25),
) -> TableIterator<
    'static,
    (
        name!(sponsors, i64),
        name!(events, i64),
        name!(pairs, i64),
        name!(load_ms, f64),
        name!(kernel_ms, f64),
        name!(pairs_per_second, f64),
    ),
> {
    let t0 = std::time::Instant::now();
    let (m, w) = load_marketplace().or_raise();
    let loaded = t0.elapsed();
    let t1 = std::time::Instant::now();
    let top = m.top_matches(p_top_k.max(1) as usize, &w);
    let kernel = t1.elapsed();
    TableIterator::once((
        m.sponsors.len() as i64,
        m.events.len() as i64,
        top.pairs_scored as i64,
        loaded.as_secs_f64() * 1000.0,
        kernel.as_secs_f64() * 1000.0,
        top.pairs_scored as f64 / kernel.as_secs_f64().max(1e-9),
    ))
}
