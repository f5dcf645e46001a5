//! The matching API: per-pair scores with explanations, and batch scoring in one call.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};

use super::load::{self, LoadError};
use crate::error::OrRaise;
use crate::matching::kernel::{Marketplace, SponsorSide};
use crate::matching::model::{SponsorInput, Weights};
use crate::matching::score::round5;

pub fn numeric5(x: f64) -> AnyNumeric {
    format!("{:.5}", round5(x))
        .parse()
        .expect("a formatted float is a valid numeric")
}

/// Everything needed to score one sponsor against one event (one prepared query).
fn load_pair(event_id: Uuid, sponsor_id: Uuid) -> Result<(Marketplace, Weights), LoadError> {
    let (sponsor, event, ctx, w) = load::pair(event_id, sponsor_id)?;
    Ok((Marketplace::build(&ctx, &[sponsor], &[event]), w))
}

/// The sponsor's regions that may be cities (for the same-country rule).
fn city_names(s: &SponsorInput) -> Vec<String> {
    s.regions
        .iter()
        .filter(|r| *r != "global")
        .cloned()
        .collect()
}

/// How well a sponsor fits an event: a score in [0,1] and its explanation.
///
/// Unknown (or invisible) ids raise `no_data_found` (P0002).
#[pg_extern(stable, parallel_safe)]
pub fn fn_compute_match_score(
    p_event_id: Uuid,
    p_sponsor_id: Uuid,
) -> TableIterator<'static, (name!(score, AnyNumeric), name!(breakdown, JsonB))> {
    let (m, w) = load_pair(p_event_id, p_sponsor_id).or_raise();
    let (ev, b) = m.explain(0, 0, &w);
    TableIterator::once((numeric5(ev.score), JsonB(b)))
}

thread_local! {
    /// Every sponsor, compiled, with the fingerprint of what it was compiled from. One event
    /// against every sponsor reuses it call after call while nothing it depends on changed.
    static SPONSOR_SIDE: RefCell<Option<(String, Rc<SponsorSide>)>> = const { RefCell::new(None) };
}

fn all_sponsors_compiled() -> Result<Rc<SponsorSide>, LoadError> {
    let fingerprint = load::sponsor_fingerprint()?;
    let cached = SPONSOR_SIDE.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(f, _)| *f == fingerprint)
            .map(|(_, side)| Rc::clone(side))
    });
    if let Some(side) = cached {
        return Ok(side);
    }
    let sponsors = load::sponsors(None)?;
    let ctx = load::context(None)?;
    let side = Rc::new(SponsorSide::build(&ctx, &sponsors));
    SPONSOR_SIDE.with(|c| *c.borrow_mut() = Some((fingerprint, Rc::clone(&side))));
    Ok(side)
}

fn load_all_sponsors_and(event_id: Uuid) -> Result<(Marketplace, Weights), LoadError> {
    let events = load::events(Some(&[event_id]))?;
    if events.is_empty() {
        return Err(LoadError::UnknownEvent(event_id));
    }
    let side = all_sponsors_compiled()?;
    let w = load::weights()?;
    Ok((Marketplace::with_sponsor_side(&side, &events), w))
}

fn load_all_events_and(sponsor_id: Uuid) -> Result<(Marketplace, Weights), LoadError> {
    let sponsors = load::sponsors(Some(&[sponsor_id]))?;
    if sponsors.is_empty() {
        return Err(LoadError::UnknownSponsor(sponsor_id));
    }
    let events = load::events(None)?;
    let w = load::weights()?;
    let ctx = load::context(Some(city_names(&sponsors[0])))?;
    Ok((Marketplace::build(&ctx, &sponsors, &events), w))
}

/// Ranked (position, score) rows as parallel arrays: ids, scores rounded to the five
/// decimals of the stored score (SQL turns them into numeric), and breakdowns when asked.
fn ranked_arrays(
    ranked: &[(usize, f64)],
    ids: &[[u8; 16]],
    explain: bool,
    breakdown: impl Fn(usize) -> serde_json::Value,
) -> (Vec<Uuid>, Vec<f64>, Vec<Option<JsonB>>) {
    (
        ranked
            .iter()
            .map(|(i, _)| Uuid::from_bytes(ids[*i]))
            .collect(),
        ranked.iter().map(|(_, score)| round5(*score)).collect(),
        ranked
            .iter()
            .map(|(i, _)| explain.then(|| JsonB(breakdown(*i))))
            .collect(),
    )
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
        name!(scores, Vec<f64>),
        name!(breakdowns, Vec<Option<JsonB>>),
    ),
> {
    let (m, w) = load_all_sponsors_and(p_event_id).or_raise();
    let ranked = m.rank_sponsors(0, &w);
    TableIterator::once(ranked_arrays(&ranked, &m.sponsor_ids, p_explain, |si| {
        m.explain(si, 0, &w).1
    }))
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
        name!(scores, Vec<f64>),
        name!(breakdowns, Vec<Option<JsonB>>),
    ),
> {
    let (m, w) = load_all_events_and(p_sponsor_id).or_raise();
    let ranked = m.rank_events(0, &w);
    TableIterator::once(ranked_arrays(&ranked, &m.event_ids, p_explain, |ei| {
        m.explain(0, ei, &w).1
    }))
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
