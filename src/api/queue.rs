//! Draining `fit_recalc_queue` into `sponsorship_matches` (SPEC §4), and the full rescore.
//!
//! A call locks up to `p_batch` ready rows with `FOR UPDATE SKIP LOCKED` (so concurrent
//! callers never take the same row), scores every pair the rows name in one pass of the batch
//! kernel, upserts the matches and marks the rows processed, counting the attempt. (The locks,
//! the writes and the attempt count share one transaction: a crash undoes all of them.) If the
//! batch fails, each row is retried alone in a subtransaction so one bad row cannot hold the
//! others back; a failing row keeps its error, waits `base · 2^(attempts-1)` seconds, and after
//! `sponsorship.recalc_max_attempts` stays in the queue as dead, for inspection.

use std::collections::{HashMap, HashSet};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{AnyNumeric, PgTryBuilder, Uuid};

use super::jsonb::Jsonb;
use super::load::{self, LoadError};
use super::match_cache;
use super::matching::{numeric5, top_pairs};
use crate::error::{OrRaise, Plain};
use crate::gucs;
use crate::matching::kernel::Marketplace;
use crate::matching::model::Weights;
use crate::matching::score::MODEL_VERSION;

#[derive(Debug, Clone, Copy)]
struct QueueRow {
    id: i64,
    event: Option<Uuid>,
    sponsor: Option<Uuid>,
}

/// Runs `f` in a subtransaction; an ERROR inside rolls it back and comes out as `Err(message)`.
fn in_subtransaction<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let (ctx, owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    unsafe { pg_sys::BeginInternalSubTransaction(std::ptr::null()) };
    let f = std::panic::AssertUnwindSafe(f);
    PgTryBuilder::new(move || {
        let f = f; // capture the AssertUnwindSafe wrapper whole, not its field
        let value = (f.0)();
        unsafe {
            pg_sys::ReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(ctx);
            pg_sys::CurrentResourceOwner = owner;
        }
        Ok(value)
    })
    .catch_others(move |e| {
        unsafe {
            pg_sys::MemoryContextSwitchTo(ctx);
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(ctx);
            pg_sys::CurrentResourceOwner = owner;
        }
        Err(match e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r)
            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                format!(
                    "{}: {}",
                    r.sql_error_code()
                        .to_string()
                        .trim_start_matches("ERRCODE_")
                        .to_lowercase(),
                    r.message()
                )
            }
        })
    })
    .execute()
}

fn claim(batch: i32, max_attempts: i32) -> Vec<QueueRow> {
    Spi::connect_mut(|client| {
        let rows = client.update(
            "SELECT id, event_id, sponsor_id FROM sponsorship.fit_recalc_queue
              WHERE processed_at IS NULL AND next_attempt_at <= now() AND attempts < $2
              ORDER BY priority DESC, enqueued_at, id
              LIMIT $1
                FOR UPDATE SKIP LOCKED",
            None,
            &[batch.into(), max_attempts.into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(QueueRow {
                id: row.get::<i64>(1)?.expect("id"),
                event: row.get::<Uuid>(2)?,
                sponsor: row.get::<Uuid>(3)?,
            });
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .unwrap_or_else(|e| {
        crate::error::raise(
            &Plain(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string()),
            "claim",
        )
    })
}

/// A computed match ready to be written.
struct MatchRow {
    event: Uuid,
    sponsor: Uuid,
    score: AnyNumeric,
    breakdown: Jsonb,
}

fn match_row(m: &Marketplace, si: usize, ei: usize, w: &Weights) -> MatchRow {
    let (ev, b) = m.compact(si, ei, w);
    MatchRow {
        event: Uuid::from_bytes(m.event_ids[ei]),
        sponsor: Uuid::from_bytes(m.sponsor_ids[si]),
        score: numeric5(ev.score),
        breakdown: Jsonb(b),
    }
}

/// Writes matches in one statement; existing pairs keep their review status. Rows are
/// written in one global order (sponsor, then event), so passes writing side by side (pair
/// passes share the write lock) wait for each other's rows without deadlock.
fn upsert(mut rows: Vec<MatchRow>, weights_version: i32) -> Result<usize, pgrx::spi::SpiError> {
    if rows.is_empty() {
        return Ok(0);
    }
    rows.sort_unstable_by(|a, b| {
        (a.sponsor.as_bytes(), a.event.as_bytes()).cmp(&(b.sponsor.as_bytes(), b.event.as_bytes()))
    });
    let n = rows.len();
    let mut events = Vec::with_capacity(n);
    let mut sponsors = Vec::with_capacity(n);
    let mut scores = Vec::with_capacity(n);
    let mut breakdowns = Vec::with_capacity(n);
    for r in rows {
        events.push(r.event);
        sponsors.push(r.sponsor);
        scores.push(r.score);
        breakdowns.push(r.breakdown);
    }
    Spi::connect_mut(|client| {
        client.update(
            "INSERT INTO sponsorship.sponsorship_matches
                    (event_id, sponsor_id, score, overlap_metrics, model_version, weights_version, computed_at)
             SELECT e, s, sc, b, $5, $6, now()
               FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::jsonb[]) AS t(e, s, sc, b)
             ON CONFLICT (event_id, sponsor_id) DO UPDATE
                SET score = EXCLUDED.score,
                    overlap_metrics = EXCLUDED.overlap_metrics,
                    model_version = EXCLUDED.model_version,
                    weights_version = EXCLUDED.weights_version,
                    computed_at = EXCLUDED.computed_at",
            None,
            &[
                events.into(),
                sponsors.into(),
                scores.into(),
                breakdowns.into(),
                MODEL_VERSION.into(),
                weights_version.into(),
            ],
        )?;
        Ok(n)
    })
}

/// Pairs already stored for these events or sponsors (they are refreshed on a rescore).
fn existing_pairs(
    events: &[Uuid],
    sponsors: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, pgrx::spi::SpiError> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT event_id, sponsor_id FROM sponsorship.sponsorship_matches
              WHERE event_id = ANY($1) OR sponsor_id = ANY($2)",
            None,
            &[events.to_vec().into(), sponsors.to_vec().into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push((
                row.get::<Uuid>(1)?.expect("event_id"),
                row.get::<Uuid>(2)?.expect("sponsor_id"),
            ));
        }
        Ok(out)
    })
}

fn dedup(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    ids.dedup_by(|a, b| a.as_bytes() == b.as_bytes());
    ids
}

/// Scores everything the rows name and writes the matches. Returns pairs written. Uses the
/// backend's compiled marketplace when it is current (a backlog drained while nothing
/// changes), else loads what the rows name.
///
/// Several processes drain the queue at once (the workers, pg_cron, direct calls). The
/// scoring runs side by side; the writing need not. A pass scored on data read at one moment
/// and writes afterwards, and meanwhile another pass may have processed an edit of a sponsor
/// or event it wrote about, having looked for that sponsor's stored pairs before this pass's
/// new ones were committed: that edit would be lost. So every pass writes under one
/// transaction-long lock ([`lock_match_writes`]) and first checks that no match input changed
/// since it read: if one did, it reads and scores again under the lock.
///
/// Only a pass that rescores a whole event or sponsor looks for stored pairs, so only it takes
/// the lock exclusively (and looks under it); a pass of pairs alone takes it shared. An edit
/// queues a whole-row entry (the triggers), and the pass that processes it waits for every
/// pass holding the lock, so it sees their writes: a pass whose check came before the edit
/// committed holds the lock until it commits; one whose check came after has scored the edit.
/// Pair passes thus write side by side, in one global order (see [`upsert`]).
fn process(rows: &[QueueRow], top_k: usize) -> Result<usize, LoadError> {
    let mut call = match_cache::begin()?;
    let (mut out, version) = compute(rows, &[], top_k, &mut call)?;

    let whole_rows = rows
        .iter()
        .any(|r| r.event.is_none() || r.sponsor.is_none());
    lock_match_writes(whole_rows)?;
    // Stored matches of rescored events and sponsors are refreshed too, so no stale score
    // survives a change.
    let existing = existing_of(rows)?;
    if !call.unchanged_since_begin()? {
        let mut call = match_cache::begin()?;
        let (out, version) = compute(rows, &existing, top_k, &mut call)?;
        return Ok(upsert(out, version)?);
    }
    let written: HashSet<([u8; 16], [u8; 16])> = out
        .iter()
        .map(|r| (*r.event.as_bytes(), *r.sponsor.as_bytes()))
        .collect();
    let rest: Vec<QueueRow> = existing
        .iter()
        .filter(|(e, s)| !written.contains(&(*e.as_bytes(), *s.as_bytes())))
        .map(|&(e, s)| QueueRow {
            id: 0,
            event: Some(e),
            sponsor: Some(s),
        })
        .collect();
    if !rest.is_empty() {
        let (more, more_version) = compute(&rest, &[], 1, &mut call)?;
        if more_version != version {
            // cannot happen while no input changed; never mix two weight versions
            let mut call = match_cache::begin()?;
            let (out, version) = compute(rows, &existing, top_k, &mut call)?;
            return Ok(upsert(out, version)?);
        }
        out.extend(more);
    }
    Ok(upsert(out, version)?)
}

/// The one lock under which matches are written (held to the end of the transaction):
/// an advisory lock keyed by the matches table's oid, so it is the extension's own. Taken
/// exclusively by a pass that looks for stored pairs (see [`process`]), else shared.
fn lock_match_writes(exclusive: bool) -> Result<(), pgrx::spi::SpiError> {
    Spi::run(if exclusive {
        "SELECT pg_catalog.pg_advisory_xact_lock('sponsorship.sponsorship_matches'::pg_catalog.regclass::pg_catalog.oid::pg_catalog.int4, 0)"
    } else {
        "SELECT pg_catalog.pg_advisory_xact_lock_shared('sponsorship.sponsorship_matches'::pg_catalog.regclass::pg_catalog.oid::pg_catalog.int4, 0)"
    })
}

/// Stored pairs of the events and sponsors the rows rescore against everything.
fn existing_of(rows: &[QueueRow]) -> Result<Vec<(Uuid, Uuid)>, pgrx::spi::SpiError> {
    let whole_events: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.sponsor.is_none())
        .filter_map(|r| r.event)
        .collect();
    let whole_sponsors: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.event.is_none())
        .filter_map(|r| r.sponsor)
        .collect();
    if whole_events.is_empty() && whole_sponsors.is_empty() {
        Ok(Vec::new())
    } else {
        existing_pairs(&whole_events, &whole_sponsors)
    }
}

/// The matches the rows ask for (see [`match_rows`]) and the weights version they were
/// scored with, from the cached marketplace when `call` finds it current, else loaded.
fn compute(
    rows: &[QueueRow],
    existing: &[(Uuid, Uuid)],
    top_k: usize,
    call: &mut match_cache::Call,
) -> Result<(Vec<MatchRow>, i32), LoadError> {
    if let Some(done) = match_cache::with_whole_retimed(call, |whole| {
        let (s_index, e_index) = whole.positions();
        let w = whole.weights;
        (
            match_rows(rows, existing, top_k, whole.m, &w, s_index, e_index),
            w.version,
        )
    }) {
        return Ok(done);
    }

    let started = std::time::Instant::now();
    let all_sponsors = rows.iter().any(|r| r.sponsor.is_none());
    let all_events = rows.iter().any(|r| r.event.is_none());
    let sponsor_ids = dedup(rows.iter().filter_map(|r| r.sponsor).collect());
    let event_ids = dedup(rows.iter().filter_map(|r| r.event).collect());
    let sponsors = load::sponsors((!all_sponsors).then_some(&sponsor_ids[..]))?;
    let events = load::events((!all_events).then_some(&event_ids[..]))?;
    let w = load::weights()?;
    let ctx = load::context(None)?;
    let m = Marketplace::build(&ctx, &sponsors, &events);
    let (s_index, e_index) = m.positions();
    let out = match_rows(rows, existing, top_k, &m, &w, &s_index, &e_index);
    match_cache::went_without(call, started.elapsed())?;
    Ok((out, w.version))
}

/// The matches the rows ask for: each pair, the best `top_k` of each event or sponsor to
/// rescore against everything, and the stored pairs of those.
fn match_rows(
    rows: &[QueueRow],
    existing: &[(Uuid, Uuid)],
    top_k: usize,
    m: &Marketplace,
    w: &Weights,
    s_index: &HashMap<[u8; 16], usize>,
    e_index: &HashMap<[u8; 16], usize>,
) -> Vec<MatchRow> {
    let mut wanted: HashSet<(usize, usize)> = HashSet::new();
    for r in rows {
        match (r.event, r.sponsor) {
            (Some(e), Some(s)) => {
                if let (Some(&ei), Some(&si)) =
                    (e_index.get(e.as_bytes()), s_index.get(s.as_bytes()))
                {
                    wanted.insert((si, ei));
                }
            }
            (Some(e), None) => {
                if let Some(&ei) = e_index.get(e.as_bytes()) {
                    let best = m.rank_sponsors(ei, w).into_iter().take(top_k);
                    wanted.extend(best.map(|(si, _)| (si, ei)));
                }
            }
            (None, Some(s)) => {
                if let Some(&si) = s_index.get(s.as_bytes()) {
                    let best = m.rank_events(si, w).into_iter().take(top_k);
                    wanted.extend(best.map(|(ei, _)| (si, ei)));
                }
            }
            (None, None) => {}
        }
    }
    for (e, s) in existing {
        if let (Some(&ei), Some(&si)) = (e_index.get(e.as_bytes()), s_index.get(s.as_bytes())) {
            wanted.insert((si, ei));
        }
    }
    let mut pairs: Vec<(usize, usize)> = wanted.into_iter().collect();
    pairs.sort_unstable();
    pairs
        .into_iter()
        .map(|(si, ei)| match_row(m, si, ei, w))
        .collect()
}

fn mark_done(ids: &[i64]) {
    Spi::run_with_args(
        "UPDATE sponsorship.fit_recalc_queue
            SET processed_at = now(), last_error = NULL, attempts = attempts + 1
          WHERE id = ANY($1)",
        &[ids.to_vec().into()],
    )
    .or_raise();
}

fn mark_failed(id: i64, error: &str) {
    let base = gucs::RECALC_RETRY_BASE_SECONDS.get().max(0) as f64;
    Spi::run_with_args(
        "UPDATE sponsorship.fit_recalc_queue
            SET attempts = attempts + 1,
                last_error = $2,
                next_attempt_at = now() + make_interval(secs => LEAST(86400, $3 * power(2, attempts)))
          WHERE id = $1",
        &[id.into(), error.into(), base.into()],
    )
    .or_raise();
}

impl crate::error::SqlError for pgrx::spi::SpiError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR
    }
}

/// Drains up to `p_batch` ready rows of `fit_recalc_queue` into `sponsorship_matches`.
/// Returns the number of queue rows processed successfully.
#[pg_extern(volatile, parallel_unsafe)]
pub fn update_sponsorship_matches(p_batch: default!(i32, 100)) -> i32 {
    if !(1..=100_000).contains(&p_batch) {
        crate::error::raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("p_batch must be between 1 and 100000, got {p_batch}"),
            ),
            "update_sponsorship_matches",
        );
    }
    let rows = claim(p_batch, gucs::RECALC_MAX_ATTEMPTS.get());
    if rows.is_empty() {
        return 0;
    }
    let top_k = gucs::MATCH_TOP_K.get().max(1) as usize;
    match in_subtransaction(|| process(&rows, top_k).or_raise()) {
        Ok(_) => {
            mark_done(&rows.iter().map(|r| r.id).collect::<Vec<_>>());
            rows.len() as i32
        }
        Err(_) if rows.len() > 1 => {
            // Find the culprit(s): each row alone.
            let mut done = Vec::new();
            for r in &rows {
                match in_subtransaction(|| process(std::slice::from_ref(r), top_k).or_raise()) {
                    Ok(_) => done.push(r.id),
                    Err(msg) => mark_failed(r.id, &msg),
                }
            }
            mark_done(&done);
            done.len() as i32
        }
        Err(msg) => {
            mark_failed(rows[0].id, &msg);
            0
        }
    }
}

/// Rescores the whole marketplace in one pass: the `p_top_k` best sponsors of every event and
/// best events of every sponsor are written to `sponsorship_matches`, every stored match is
/// refreshed, and the queue rows pending when it started and untouched since are marked processed.
/// Returns the number of matches written.
#[pg_extern(volatile, parallel_unsafe)]
pub fn rescore_all_matches(p_top_k: default!(i32, 25)) -> i64 {
    if p_top_k < 1 {
        crate::error::raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "p_top_k must be at least 1".into(),
            ),
            "rescore_all_matches",
        );
    }
    // The queue rows this rescore answers: those pending now, each with the version it has
    // now (xmin). They are not locked, so edits made while it scores do not wait for it; a row an
    // edit touches meanwhile (a new version) or a pass processes meanwhile is left alone.
    let (answered, versions): (Vec<i64>, Vec<String>) = Spi::connect(|client| {
        let mut ids = Vec::new();
        let mut xmins = Vec::new();
        for row in client.select(
            "SELECT id, xmin::text FROM sponsorship.fit_recalc_queue WHERE processed_at IS NULL",
            None,
            &[],
        )? {
            ids.push(row.get::<i64>(1)?.expect("id"));
            xmins.push(row.get::<String>(2)?.expect("xmin"));
        }
        Ok::<_, pgrx::spi::SpiError>((ids, xmins))
    })
    .or_raise();
    // Scored side by side with the queue's passes; written under their lock (see `process`).
    let call = match_cache::begin().or_raise();
    let (mut m, mut w): (Marketplace, Weights) = super::matching::load_marketplace().or_raise();
    let mut top = m.top_matches(p_top_k as usize, &w);
    lock_match_writes(true).or_raise();
    if !call.unchanged_since_begin().or_raise() {
        (m, w) = super::matching::load_marketplace().or_raise();
        top = m.top_matches(p_top_k as usize, &w);
    }
    let mut wanted: HashSet<(usize, usize)> = top_pairs(&top)
        .into_iter()
        .map(|(ei, si, _, _, _)| (si, ei))
        .collect();
    let (s_index, e_index) = m.positions();
    let stored: Vec<(Uuid, Uuid)> = Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(
            "SELECT event_id, sponsor_id FROM sponsorship.sponsorship_matches",
            None,
            &[],
        )? {
            out.push((
                row.get::<Uuid>(1)?.expect("event_id"),
                row.get::<Uuid>(2)?.expect("sponsor_id"),
            ));
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })
    .or_raise();
    for (e, s) in stored {
        if let (Some(&ei), Some(&si)) = (e_index.get(e.as_bytes()), s_index.get(s.as_bytes())) {
            wanted.insert((si, ei));
        }
    }
    let mut pairs: Vec<(usize, usize)> = wanted.into_iter().collect();
    pairs.sort_unstable();
    let mut written = 0usize;
    for chunk in pairs.chunks(5_000) {
        let rows = chunk
            .iter()
            .map(|&(si, ei)| match_row(&m, si, ei, &w))
            .collect();
        written += upsert(rows, w.version).or_raise();
    }
    Spi::run_with_args(
        "UPDATE sponsorship.fit_recalc_queue q SET processed_at = now(), last_error = NULL
           FROM unnest($1::bigint[], $2::text[]) AS seen(id, version)
          WHERE q.id = seen.id AND q.xmin::text = seen.version AND q.processed_at IS NULL",
        &[answered.into(), versions.into()],
    )
    .or_raise();
    written as i64
}
