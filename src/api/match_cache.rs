//! The compiled marketplace kept between calls in a backend, and the checks that say when it
//! may be used (the rules are in [`crate::snapshot_cache`]).
//!
//! Two levels:
//! - the **sponsor side** (every sponsor compiled, the market context, the weights): kept
//!   whenever a call loaded it, since one event against every sponsor needs all of it anyway;
//! - the **whole marketplace** (the sponsor side plus every event compiled): built when one
//!   sponsor is scored against every event (which loads every event anyway), or once per-pair
//!   calls without it have cost as much as a build (ski rental), and only when it fits in
//!   `sponsorship.match_cache_mb`.
//!
//! Each call first reads the change log with its own snapshot (one indexed range read, run
//! with the log owner's rights since the log is service-only); the cache is used only when
//! that snapshot sees exactly the changes the cache's snapshot saw, by the same viewer.
//! Event timing depends on `now()`, so a cached event is re-timed from its epochs first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::Uuid;

use super::load::{self, LoadError};
use crate::gucs;
use crate::matching::kernel::{Marketplace, SponsorSide};
use crate::matching::model::Weights;
use crate::snapshot_cache::{Observation, Rental, Token, Verdict, Viewer};

/// The price assumed for the first whole-marketplace build of a backend, before one was
/// measured.
const FIRST_BUILD_PRICE: Duration = Duration::from_millis(20);

/// Bytes a compiled sponsor or event takes besides its embedding (a generous estimate).
const ROW_OVERHEAD_BYTES: usize = 512;

struct WholeMarket {
    m: Marketplace,
    sponsors: HashMap<[u8; 16], usize>,
    events: HashMap<[u8; 16], usize>,
    /// `now()` (epoch seconds) every event was last re-timed to.
    all_timed_at: f64,
    bytes: usize,
}

struct Cached {
    token: Token,
    side: Rc<SponsorSide>,
    weights: Weights,
    whole: Option<WholeMarket>,
}

#[derive(Default, Clone)]
struct Stats {
    hits: u64,
    misses: u64,
    side_builds: u64,
    whole_builds: u64,
    last_whole_build: Option<Duration>,
    skipped_too_big: u64,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
    static RENTAL: RefCell<Rental> = RefCell::new(Rental::new(FIRST_BUILD_PRICE));
    static STATS: RefCell<Stats> = RefCell::new(Stats::default());
}

fn guc(name: &CStr) -> Option<String> {
    // SAFETY: GetConfigOption returns NULL or a NUL-terminated string valid until the next
    // GUC change; it is copied at once.
    unsafe {
        let p = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// Everything the caller's row level security depends on.
fn viewer() -> Viewer {
    // SAFETY: plain catalog lookups for the current user.
    unsafe {
        let role = pg_sys::GetUserId();
        let service = pg_sys::get_role_oid(c"service_role".as_ptr(), true);
        Viewer {
            role: role.to_u32(),
            claims: guc(c"request.jwt.claims"),
            legacy_sub: guc(c"request.jwt.claim.sub"),
            row_security: guc(c"row_security"),
            acts_as_service: service != pg_sys::InvalidOid
                && pg_sys::has_privs_of_role(role, service),
            bypasses_rls: pg_sys::superuser_arg(role) || pg_sys::has_bypassrls_privilege(role),
        }
    }
}

const OBSERVE_SQL: &str = "
SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::int8,
       pg_catalog.pg_current_xact_id_if_assigned()::text::int8,
       (SELECT p.upto::text::int8 FROM sponsorship.match_input_pruned p),
       ARRAY(SELECT c.xid::text::int8 FROM sponsorship.match_input_changes c
              WHERE c.xid >= COALESCE($1::text::xid8, pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()))
              ORDER BY c.xid)";

/// The change log as this call's snapshot sees it, from `since` up (from the snapshot's own
/// xmin when None). Runs with the log owner's rights: the log is service-only.
fn observe(since: Option<i64>) -> Result<(Observation, u32), LoadError> {
    const LOG: &str = "sponsorship.match_input_changes";
    let (_, log_oid) = super::owner::owner_of(LOG)?;
    let int8 = pgrx::PgOid::BuiltIn(pg_sys::BuiltinOid::INT8OID);
    let obs = super::owner::as_owner_of(LOG, || {
        Spi::connect(|client| {
            load::select_prepared(client, OBSERVE_SQL, &[int8], &[since.into()], |mut rows| {
                let row = rows.next().expect("one row");
                Ok(Observation {
                    xmin: row.get::<i64>(1)?.unwrap_or(0),
                    me: row.get::<i64>(2)?,
                    pruned_upto: row.get::<i64>(3)?.unwrap_or(0),
                    changes: row.get::<Vec<i64>>(4)?.unwrap_or_default(),
                })
            })
        })
    })??;
    Ok((obs, log_oid.to_u32()))
}

/// One call's view of the cache: who asks, what the log looks like, and the verdict on the
/// cache held now.
pub struct Call {
    viewer: Viewer,
    obs: Observation,
    log_oid: u32,
    verdict: Verdict,
}

fn token_key(viewer: &Viewer, log_oid: u32) -> Viewer {
    // the log's oid changes when the extension is re-created: nothing cached survives that
    let mut v = viewer.clone();
    v.role ^= log_oid.rotate_left(16);
    v
}

/// Reads the change log and judges the cache held now.
pub fn begin() -> Result<Call, LoadError> {
    let viewer = viewer();
    let since = CACHE.with(|c| c.borrow().as_ref().map(|c| c.token.xmin));
    let (obs, log_oid) = observe(since)?;
    let key = token_key(&viewer, log_oid);
    let verdict = CACHE.with(|c| match c.borrow().as_ref() {
        Some(cached) => cached.token.judge(&key, &obs),
        None if obs.wrote_inputs() => Verdict::Bypass,
        None => Verdict::Stale,
    });
    Ok(Call {
        viewer,
        obs,
        log_oid,
        verdict,
    })
}

impl Call {
    fn token(&self) -> Token {
        self.obs.token(token_key(&self.viewer, self.log_oid))
    }

    /// Whether a snapshot taken now sees exactly the match-input changes this call's first
    /// snapshot saw: no input changed (committed) in between, so what the call read then is
    /// what it would read now. False also when that cannot be told (this transaction wrote
    /// inputs itself, or the log was pruned in between).
    pub fn unchanged_since_begin(&self) -> Result<bool, LoadError> {
        let (now, log_oid) = observe(Some(self.obs.xmin))?;
        Ok(log_oid == self.log_oid
            && self.token().judge(&token_key(&self.viewer, log_oid), &now) == Verdict::Fresh)
    }
}

fn count(f: impl FnOnce(&mut Stats)) {
    STATS.with(|s| f(&mut s.borrow_mut()));
}

/// Loads and compiles the sponsor side, the context and the weights.
fn load_side() -> Result<(Rc<SponsorSide>, Weights), LoadError> {
    let sponsors = load::sponsors(None)?;
    let ctx = load::context(None)?;
    let w = load::weights()?;
    Ok((Rc::new(SponsorSide::build(&ctx, &sponsors)), w))
}

/// The compiled sponsor side and the weights for this call: the cached ones when fresh,
/// else loaded (and kept, unless this call must bypass the cache).
pub fn sponsor_side(call: &Call) -> Result<(Rc<SponsorSide>, Weights), LoadError> {
    match call.verdict {
        Verdict::Fresh => {
            let hit = CACHE.with(|c| {
                c.borrow()
                    .as_ref()
                    .map(|c| (Rc::clone(&c.side), c.weights))
            });
            count(|s| s.hits += 1);
            Ok(hit.expect("a fresh verdict has a cache"))
        }
        Verdict::Bypass => load_side(),
        Verdict::Stale => {
            // the log was read (begin) before these loads: see snapshot_cache
            let (side, w) = load_side()?;
            CACHE.with(|c| {
                *c.borrow_mut() = Some(Cached {
                    token: call.token(),
                    side: Rc::clone(&side),
                    weights: w,
                    whole: None,
                })
            });
            count(|s| s.side_builds += 1);
            Ok((side, w))
        }
    }
}

fn limit_bytes() -> usize {
    gucs::MATCH_CACHE_MB.get().max(0) as usize * 1024 * 1024
}

fn estimate_bytes(sponsors: usize, events: usize, dims: usize) -> usize {
    (sponsors + events) * (dims * 4 + ROW_OVERHEAD_BYTES)
}

/// Builds the whole marketplace into the cache (after a fresh or stale verdict). Returns
/// false, keeping nothing, when it would not fit in `sponsorship.match_cache_mb`.
fn build_whole(call: &Call) -> Result<bool, LoadError> {
    if call.verdict == Verdict::Bypass || limit_bytes() == 0 {
        return Ok(false);
    }
    let started = Instant::now();
    let (side, w) = sponsor_side(call)?;
    let events = load::events(None)?;
    let dims = events
        .iter()
        .filter_map(|e| e.embedding.as_ref().map(Vec::len))
        .next()
        .unwrap_or(0);
    let bytes = estimate_bytes(side.len(), events.len(), dims);
    if bytes > limit_bytes() {
        count(|s| s.skipped_too_big += 1);
        RENTAL.with(|r| r.borrow_mut().built(started.elapsed()));
        return Ok(false);
    }
    let m = Marketplace::with_sponsor_side(&side, &events);
    let (sponsors, events) = m.positions();
    let whole = WholeMarket {
        m,
        sponsors,
        events,
        all_timed_at: load::transaction_now_epoch(),
        bytes,
    };
    CACHE.with(|c| {
        *c.borrow_mut() = Some(Cached {
            token: call.token(),
            side,
            weights: w,
            whole: Some(whole),
        })
    });
    let took = started.elapsed();
    RENTAL.with(|r| r.borrow_mut().built(took));
    count(|s| {
        s.whole_builds += 1;
        s.last_whole_build = Some(took);
    });
    Ok(true)
}

/// Access to the cached whole marketplace, re-timed to this transaction's `now()`.
pub struct Whole<'a> {
    pub m: &'a mut Marketplace,
    pub weights: Weights,
    sponsors: &'a HashMap<[u8; 16], usize>,
    events: &'a HashMap<[u8; 16], usize>,
    now: f64,
}

impl Whole<'_> {
    /// Position of an event, re-timed; `UnknownEvent` when it is not visible.
    pub fn event(&mut self, id: Uuid) -> Result<usize, LoadError> {
        let ei = *self
            .events
            .get(id.as_bytes())
            .ok_or(LoadError::UnknownEvent(id))?;
        self.m.events[ei].retime(self.now);
        Ok(ei)
    }

    /// Positions of every sponsor id and every event id.
    pub fn positions(&self) -> (&HashMap<[u8; 16], usize>, &HashMap<[u8; 16], usize>) {
        (self.sponsors, self.events)
    }

    pub fn sponsor(&self, id: Uuid) -> Result<usize, LoadError> {
        self.sponsors
            .get(id.as_bytes())
            .copied()
            .ok_or(LoadError::UnknownSponsor(id))
    }
}

/// Runs `f` on the whole marketplace when the cache holds it and is fresh for this call.
pub fn with_whole<R>(call: &Call, f: impl FnOnce(Whole<'_>) -> R) -> Option<R> {
    if call.verdict != Verdict::Fresh || limit_bytes() == 0 {
        return None;
    }
    CACHE.with(|c| {
        let mut borrow = c.borrow_mut();
        let cached = borrow.as_mut()?;
        let weights = cached.weights;
        let whole = cached.whole.as_mut()?;
        count(|s| s.hits += 1);
        Some(f(Whole {
            m: &mut whole.m,
            weights,
            sponsors: &whole.sponsors,
            events: &whole.events,
            now: load::transaction_now_epoch(),
        }))
    })
}

/// Like [`with_whole`], with every event re-timed first (one sponsor against every event).
pub fn with_whole_retimed<R>(call: &Call, f: impl FnOnce(Whole<'_>) -> R) -> Option<R> {
    let now = load::transaction_now_epoch();
    CACHE.with(|c| {
        if let Some(whole) = c.borrow_mut().as_mut().and_then(|c| c.whole.as_mut()) {
            if whole.all_timed_at != now {
                for e in &mut whole.m.events {
                    e.retime(now);
                }
                whole.all_timed_at = now;
            }
        }
    });
    with_whole(call, f)
}

/// For one sponsor against every event: builds the whole marketplace when the cache does
/// not hold it (every event is loaded either way) and runs `f` on it; None when it cannot
/// be cached (this call bypasses the cache, or it does not fit).
pub fn with_whole_built<R>(
    call: &mut Call,
    f: impl FnOnce(Whole<'_>) -> R,
) -> Result<Option<R>, LoadError> {
    let has_whole = call.verdict == Verdict::Fresh
        && CACHE.with(|c| c.borrow().as_ref().is_some_and(|c| c.whole.is_some()));
    if !has_whole {
        if !build_whole(call)? {
            return Ok(None);
        }
        count(|s| s.misses += 1);
        call.verdict = Verdict::Fresh;
    }
    Ok(with_whole_retimed(call, f))
}

/// A per-pair call went without the whole marketplace and took `took`; builds it when
/// those calls have cost as much as a build.
pub fn went_without(call: &mut Call, took: Duration) -> Result<(), LoadError> {
    count(|s| s.misses += 1);
    if call.verdict == Verdict::Bypass {
        return Ok(());
    }
    let due = RENTAL.with(|r| {
        let mut r = r.borrow_mut();
        r.paid(took);
        r.should_build()
    });
    if due && build_whole(call)? {
        call.verdict = Verdict::Fresh;
    }
    Ok(())
}

/// What the cache of this backend holds, for `match_cache_status()`.
pub struct Status {
    pub sponsors: Option<i64>,
    pub events: Option<i64>,
    pub bytes: Option<i64>,
    pub snapshot_xmin: Option<i64>,
    pub hits: i64,
    pub misses: i64,
    pub sponsor_side_builds: i64,
    pub whole_builds: i64,
    pub last_whole_build_ms: Option<f64>,
    pub next_build_after_ms: f64,
    pub skipped_too_big: i64,
}

pub fn status() -> Status {
    let stats = STATS.with(|s| s.borrow().clone());
    let (sponsors, events, bytes, xmin) = CACHE.with(|c| match c.borrow().as_ref() {
        None => (None, None, None, None),
        Some(c) => (
            Some(c.side.len() as i64),
            c.whole.as_ref().map(|w| w.m.events.len() as i64),
            c.whole.as_ref().map(|w| w.bytes as i64),
            Some(c.token.xmin),
        ),
    });
    Status {
        sponsors,
        events,
        bytes,
        snapshot_xmin: xmin,
        hits: stats.hits as i64,
        misses: stats.misses as i64,
        sponsor_side_builds: stats.side_builds as i64,
        whole_builds: stats.whole_builds as i64,
        last_whole_build_ms: stats.last_whole_build.map(|d| d.as_secs_f64() * 1000.0),
        next_build_after_ms: RENTAL.with(|r| r.borrow().price().as_secs_f64() * 1000.0),
        skipped_too_big: stats.skipped_too_big as i64,
    }
}

/// Drops what this backend caches (for tests and after bulk maintenance).
pub fn clear() {
    CACHE.with(|c| *c.borrow_mut() = None);
}
