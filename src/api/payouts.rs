//! Sending payouts to Stripe exactly once (SPEC §5).
//!
//! A pass: (1) in one transaction, claim ready queue rows (`FOR UPDATE SKIP LOCKED`; a claim
//! counts the attempt and takes a lease) and commit; (2) with no transaction open, send each
//! payout as one Stripe request carrying the payout's deterministic idempotency key, several
//! at once on threads that never touch Postgres; (3) in another transaction, record each
//! outcome. A process that dies between (1) and (3) leaves rows `processing`; once their lease
//! runs out any pass resends them with the same key, and Stripe answers with what it did the
//! first time — so a crash at any point never pays twice.
//!
//! Outcomes: done → completed; retryable (429, 5xx, nothing sent) → back off with jitter,
//! dead-lettered after `max_attempts`; unknown (the request may have reached Stripe) →
//! resent with the same key, never dead-lettered; refused (other 4xx) → dead at once, with
//! Stripe's reason.
//!
//! Passes run in background processes only, where transactions can be committed in
//! between: the payout worker (when preloaded) and a short-lived worker that
//! `process_payout_queue()` / `reconcile_payouts()` start and wait for.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::{json, Value};
use stripe_connect::{
    retry, send_concurrently, Client, Config, Outcome, ReversalRequest, Secret, TransferRequest,
};

use crate::error::{raise, Plain};
use crate::gucs;
use crate::worker::{extension_installed, in_transaction};

pub const PAYOUT_WORKER_TYPE: &str = "sponsorship payout worker";
pub const PAYOUT_PASS_TYPE: &str = "sponsorship payout pass";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Transfer,
    Reversal,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Transfer => "transfer",
            Action::Reversal => "reversal",
        }
    }
}

/// One claimed queue row and what its Stripe request needs.
#[derive(Debug, Clone)]
struct Job {
    queue_id: i64,
    payout_id: Uuid,
    action: Action,
    attempts: i32,
    max_attempts: i32,
    order_id: Uuid,
    org_id: Uuid,
    stage: String,
    amount: i64,
    currency: String,
    destination: String,
    idempotency_key: String,
    transfer_id: Option<String>,
    /// An earlier attempt's outcome was unknown: the payout may exist at Stripe.
    maybe_sent: bool,
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassCounts {
    pub claimed: i32,
    pub completed: i32,
    pub retrying: i32,
    pub dead: i32,
    pub detail: Vec<Value>,
}

fn http_timeout() -> Duration {
    Duration::from_millis(gucs::PAYOUT_HTTP_TIMEOUT_MS.get().max(100) as u64)
}

/// The lease of a claim: long enough that a live sender always records first.
fn lease() -> Duration {
    Duration::from_secs(gucs::PAYOUT_LEASE_SECONDS.get().max(1) as u64).max(http_timeout() * 2)
}

/// `sponsorship.payout_lease_seconds` (raised to twice the HTTP timeout), as an interval.
#[pg_extern(stable, parallel_safe)]
pub fn payout_lease() -> pgrx::datum::Interval {
    pgrx::datum::Interval::from_micros(lease().as_micros() as i64)
}

/// The Stripe client of the server's settings (`base` overrides the URL).
fn client(base: Option<String>) -> Result<Client, String> {
    let base = base
        .or_else(|| gucs::text(&gucs::STRIPE_API_BASE))
        .ok_or("sponsorship.stripe_api_base is not set")?;
    let file = gucs::text(&gucs::STRIPE_SECRET_KEY_FILE).ok_or(
        "sponsorship.stripe_secret_key_file is not set in the server's configuration \
         (payout passes run in their own process and read postgresql.conf, not a session's SET)",
    )?;
    let secret = Secret::from_file(std::path::Path::new(&file))
        .map_err(|e| format!("sponsorship.stripe_secret_key_file: {e}"))?;
    Client::new(Config {
        base_url: base,
        secret_key: secret,
        timeout: http_timeout(),
        connect_timeout: http_timeout().min(Duration::from_secs(10)),
        stripe_version: None,
    })
    .map_err(|e| format!("sponsorship.stripe_api_base: {e}"))
}

const CLAIM_SQL: &str = "
WITH ready AS (
    SELECT q.id FROM sponsorship.payout_queue q
     WHERE ((q.status IN ('pending', 'failed') AND q.next_attempt_at <= now() AND NOT $4)
            OR (q.status = 'processing' AND q.locked_at < now() - make_interval(secs => $2)))
     ORDER BY q.priority DESC, q.next_attempt_at, q.id
     LIMIT $1
       FOR UPDATE SKIP LOCKED),
claimed AS (
    UPDATE sponsorship.payout_queue q
       SET status = 'processing', locked_at = now(), attempts = q.attempts + 1,
           -- taking over a claim whose sender never recorded: it may have sent
           maybe_sent = q.maybe_sent OR q.status = 'processing'
      FROM ready WHERE q.id = ready.id
    RETURNING q.id, q.payout_id, q.action, q.attempts, q.max_attempts, q.maybe_sent)
SELECT c.id, c.payout_id, c.action, c.attempts, COALESCE(c.max_attempts, $3),
       p.order_id, p.org_id, p.stage, p.amount_cents, p.currency, p.destination_account,
       p.idempotency_key, p.stripe_transfer_id, c.maybe_sent
  FROM claimed c JOIN sponsorship.sponsorship_payouts p ON p.id = c.payout_id
 ORDER BY c.id";

/// Claims up to `batch` ready rows (only rows whose lease ran out, when `only_unknown`).
fn claim(batch: i32, only_unknown: bool, older_than: Duration) -> Result<Vec<Job>, pgrx::spi::SpiError> {
    let jobs = Spi::connect_mut(|client| {
        let rows = client.update(
            CLAIM_SQL,
            None,
            &[
                batch.into(),
                older_than.as_secs_f64().into(),
                gucs::PAYOUT_MAX_ATTEMPTS.get().into(),
                only_unknown.into(),
            ],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let action: String = r.get(3)?.unwrap_or_default();
            out.push(Job {
                queue_id: r.get(1)?.expect("id"),
                payout_id: r.get(2)?.expect("payout_id"),
                action: if action == "reversal" { Action::Reversal } else { Action::Transfer },
                attempts: r.get(4)?.unwrap_or(1),
                max_attempts: r.get(5)?.unwrap_or(1),
                order_id: r.get(6)?.expect("order_id"),
                org_id: r.get(7)?.expect("org_id"),
                stage: r.get(8)?.unwrap_or_default(),
                amount: r.get(9)?.unwrap_or(0),
                currency: r.get(10)?.unwrap_or_default(),
                destination: r.get(11)?.unwrap_or_default(),
                idempotency_key: r.get(12)?.unwrap_or_default(),
                transfer_id: r.get(13)?,
                maybe_sent: r.get(14)?.unwrap_or(false),
            });
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?;
    let transfers: Vec<Uuid> = jobs
        .iter()
        .filter(|j| j.action == Action::Transfer)
        .map(|j| j.payout_id)
        .collect();
    if !transfers.is_empty() {
        Spi::run_with_args(
            "UPDATE sponsorship.sponsorship_payouts SET status = 'processing'
              WHERE id = ANY($1) AND status IN ('pending', 'processing')",
            &[transfers.into()],
        )?;
    }
    let mut orders: Vec<Uuid> = jobs.iter().map(|j| j.order_id).collect();
    orders.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    orders.dedup_by(|a, b| a.as_bytes() == b.as_bytes());
    for o in orders {
        Spi::run_with_args(
            "SELECT sponsorship.refresh_order_payout_status($1)",
            &[o.into()],
        )?;
    }
    Ok(jobs)
}

/// The Stripe request of one job. Runs on a sender thread: no Postgres here.
fn send(client: &Client, j: &Job) -> Outcome<String> {
    match j.action {
        Action::Transfer => {
            let req = TransferRequest {
                amount: j.amount,
                currency: j.currency.clone(),
                destination: j.destination.clone(),
                transfer_group: Some(format!("order_{}", j.order_id)),
                description: Some(format!("Sponsorship payout ({} stage) of order {}", j.stage, j.order_id)),
                metadata: vec![
                    ("payout_id".into(), j.payout_id.to_string()),
                    ("order_id".into(), j.order_id.to_string()),
                    ("org_id".into(), j.org_id.to_string()),
                    ("stage".into(), j.stage.clone()),
                ],
            };
            client.create_transfer(&req, &j.idempotency_key).map(|t| t.id)
        }
        Action::Reversal => {
            let Some(transfer) = j.transfer_id.as_deref() else {
                return Outcome::Fail {
                    reason: "the payout has no Stripe transfer to reverse".into(),
                    status: 0,
                    code: None,
                };
            };
            let req = ReversalRequest {
                amount: Some(j.amount),
                metadata: vec![
                    ("payout_id".into(), j.payout_id.to_string()),
                    ("order_id".into(), j.order_id.to_string()),
                ],
            };
            let key = format!("sponsorship_{}_{}_reversal", j.order_id, j.stage);
            client.create_reversal(transfer, &req, &key).map(|r| r.id)
        }
    }
}


const RECORD_DONE_SQL: &str = "
WITH q AS (
    UPDATE sponsorship.payout_queue
       SET status = 'completed', processed_at = now(), locked_at = NULL, last_error = NULL
     WHERE id = $1 AND status = 'processing' AND attempts = $2
    RETURNING payout_id)
UPDATE sponsorship.sponsorship_payouts p
   SET status = CASE WHEN $4 THEN 'reversed' ELSE 'completed' END,
       stripe_transfer_id = CASE WHEN $4 THEN p.stripe_transfer_id ELSE $3 END,
       stripe_reversal_id = CASE WHEN $4 THEN $3 ELSE p.stripe_reversal_id END,
       completed_at = CASE WHEN $4 THEN p.completed_at ELSE now() END,
       failure_reason = NULL
  FROM q WHERE p.id = q.payout_id
RETURNING p.order_id";

const RECORD_AGAIN_SQL: &str = "
WITH q AS (
    UPDATE sponsorship.payout_queue
       SET status = CASE WHEN $3 THEN 'dead' ELSE 'failed' END,
           next_attempt_at = now() + make_interval(secs => $4),
           last_error = $5, locked_at = NULL, maybe_sent = maybe_sent OR $6,
           processed_at = CASE WHEN $3 THEN now() END
     WHERE id = $1 AND status = 'processing' AND attempts = $2
    RETURNING payout_id, action)
UPDATE sponsorship.sponsorship_payouts p
   SET status = CASE WHEN q.action <> 'transfer' THEN p.status WHEN $3 THEN 'failed' ELSE 'pending' END,
       failure_reason = CASE WHEN $3 THEN $5 ELSE p.failure_reason END
  FROM q WHERE p.id = q.payout_id
RETURNING p.order_id";

/// Why a claimed job was not sent (it is retried, and never dead-lettered for it).
const LEASE_SKIP: &str = "not sent: the pass ran out of its lease before this payout's turn";

/// Runs an `UPDATE ... RETURNING order_id`; `None` when it matched no row.
fn update_returning_order(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Option<Uuid>, pgrx::spi::SpiError> {
    Spi::connect_mut(|client| {
        let rows = client.update(sql, None, args)?;
        match rows.into_iter().next() {
            Some(r) => r.get::<Uuid>(1),
            None => Ok(None),
        }
    })
}

/// Records one outcome; false when the row is no longer this pass's (its lease ran out and
/// another pass took it over, which will record the same outcome).
fn record(j: &Job, outcome: &Outcome<String>, rng: &mut retry::XorShift64Star, counts: &mut PassCounts) -> Result<bool, pgrx::spi::SpiError> {
    let (order, entry): (Option<Uuid>, Value) = match outcome {
        Outcome::Done(id) => {
            let order = update_returning_order(
                RECORD_DONE_SQL,
                &[j.queue_id.into(), j.attempts.into(), id.as_str().into(), (j.action == Action::Reversal).into()],
            )?;
            if order.is_some() && j.action == Action::Transfer {
                Spi::run_with_args(
                    "UPDATE sponsorship.sponsorship_orders SET stripe_transfer_id = $2, paid_at = COALESCE(paid_at, now())
                      WHERE id = $1",
                    &[j.order_id.into(), id.as_str().into()],
                )?;
                // refunded while this transfer was in flight: take it back
                Spi::run_with_args(
                    "INSERT INTO sponsorship.payout_queue (payout_id, action, priority)
                     SELECT $1, 'reversal', 10 FROM sponsorship.sponsorship_orders o
                      WHERE o.id = $2 AND o.status = 'refunded'
                     ON CONFLICT (payout_id, action) DO NOTHING",
                    &[j.payout_id.into(), j.order_id.into()],
                )?;
            }
            if order.is_some() {
                counts.completed += 1;
            }
            (order, json!({"outcome": "completed", "stripe_id": id}))
        }
        other => {
            let (reason, retry_after, dead) = match other {
                // a payout that may have reached Stripe once is never given up on
                Outcome::Retry { reason, retry_after, .. } => {
                    let given_up = j.attempts >= j.max_attempts && !j.maybe_sent && reason != LEASE_SKIP;
                    (reason.clone(), *retry_after, given_up)
                }
                Outcome::Unknown { reason } => (format!("outcome unknown: {reason}"), None, false),
                Outcome::Fail { reason, .. } => (reason.clone(), None, true),
                Outcome::Done(_) => unreachable!(),
            };
            let wait = retry::backoff(
                j.attempts.max(1) as u32,
                Duration::from_secs(gucs::PAYOUT_RETRY_BASE_SECONDS.get().max(0) as u64),
                Duration::from_secs(gucs::PAYOUT_RETRY_CAP_SECONDS.get().max(1) as u64),
                retry_after,
                rng.next_f64(),
            );
            let reason: String = reason.chars().take(1000).collect();
            let order = update_returning_order(
                RECORD_AGAIN_SQL,
                &[
                    j.queue_id.into(),
                    j.attempts.into(),
                    dead.into(),
                    wait.as_secs_f64().into(),
                    reason.as_str().into(),
                    matches!(other, Outcome::Unknown { .. }).into(),
                ],
            )?;
            if order.is_some() {
                if dead {
                    counts.dead += 1;
                } else {
                    counts.retrying += 1;
                }
            }
            (
                order,
                json!({"outcome": if dead { "dead" } else { "retrying" }, "error": reason,
                       "retry_in_seconds": (!dead).then(|| wait.as_secs_f64())}),
            )
        }
    };
    let Some(order) = order else {
        return Ok(false);
    };
    Spi::run_with_args("SELECT sponsorship.refresh_order_payout_status($1)", &[order.into()])?;
    let mut entry = entry;
    entry["payout_id"] = json!(j.payout_id.to_string());
    entry["action"] = json!(j.action.name());
    entry["attempt"] = json!(j.attempts);
    counts.detail.push(entry);
    Ok(true)
}

/// How a pass was started, and what it may take.
#[derive(Debug, Clone)]
struct PassSpec {
    source: &'static str,
    token: i64,
    batch: i32,
    base: Option<String>,
    /// Only rows claimed longer ago than this without a result (reconcile_payouts()).
    only_unknown: Option<Duration>,
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}

/// One pass; the run is logged in payout_runs (always for a called pass, for the worker
/// only when it claimed something).
fn run_pass(spec: &PassSpec) -> Result<PassCounts, String> {
    let client = match client(spec.base.clone()) {
        Ok(c) => c,
        Err(e) if spec.source == "worker" => return Err(e),
        Err(e) => {
            let (source, token) = (spec.source, spec.token);
            let msg = e.clone();
            in_transaction(move || {
                Spi::run_with_args(
                    "INSERT INTO sponsorship.payout_runs (token, source, finished_at, error) VALUES ($1, $2, now(), $3)",
                    &[token.into(), source.into(), msg.as_str().into()],
                )
            })?
            .map_err(|e| e.to_string())?;
            return Err(e);
        }
    };
    let (batch, spec2) = (spec.batch, spec.clone());
    let jobs = in_transaction(move || -> Result<Vec<Job>, pgrx::spi::SpiError> {
        let jobs = match spec2.only_unknown {
            Some(older) => claim(batch, true, older)?,
            None => claim(batch, false, lease())?,
        };
        if !jobs.is_empty() || spec2.source != "worker" {
            Spi::run_with_args(
                "INSERT INTO sponsorship.payout_runs (token, source, claimed) VALUES ($1, $2, $3)",
                &[spec2.token.into(), spec2.source.into(), (jobs.len() as i32).into()],
            )?;
        }
        Ok(jobs)
    })?
    .map_err(|e| e.to_string())?;
    let mut counts = PassCounts {
        claimed: jobs.len() as i32,
        ..Default::default()
    };
    if jobs.is_empty() {
        if spec.source != "worker" {
            let token = spec.token;
            in_transaction(move || {
                Spi::run_with_args(
                    "UPDATE sponsorship.payout_runs SET finished_at = now() WHERE token = $1",
                    &[token.into()],
                )
            })?
            .map_err(|e| e.to_string())?;
        }
        return Ok(counts);
    }
    // No transaction is open here: the claims are committed, nothing is locked.
    let concurrency = gucs::PAYOUT_CONCURRENCY.get().max(1) as usize;
    // A job still waiting when its claim could run out before its request ends is not sent:
    // another pass may take the row over once the lease is gone. (Passes claim more rows
    // than they have senders, so a long batch of slow answers reaches this.)
    // (The lease is at least twice the HTTP timeout, so this leaves most of a timeout to start.)
    let claimed_at = std::time::Instant::now();
    let send_by = lease().saturating_sub(http_timeout() + http_timeout() / 10);
    let outcomes = send_concurrently(jobs.clone(), concurrency, |j| {
        if claimed_at.elapsed() > send_by {
            return Outcome::Retry {
                reason: LEASE_SKIP.into(),
                retry_after: Some(Duration::ZERO),
                status: None,
            };
        }
        send(&client, j)
    });
    let token = spec.token;
    let result = in_transaction(std::panic::AssertUnwindSafe(move || -> Result<PassCounts, pgrx::spi::SpiError> {
        let mut rng = retry::XorShift64Star::new(seed());
        for (j, o) in jobs.iter().zip(&outcomes) {
            record(j, o, &mut rng, &mut counts)?;
        }
        Spi::run_with_args(
            "UPDATE sponsorship.payout_runs
                SET finished_at = now(), completed = $2, retrying = $3, dead = $4, detail = $5
              WHERE token = $1",
            &[
                token.into(),
                counts.completed.into(),
                counts.retrying.into(),
                counts.dead.into(),
                pgrx::JsonB(Value::Array(counts.detail.clone())).into(),
            ],
        )?;
        Ok(counts)
    }))?;
    result.map_err(|e| e.to_string())
}

fn bad(msg: String) -> ! {
    raise(&Plain(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg), "payouts")
}

/// Starts a short-lived background process for one pass and waits for it; the pass reports
/// through payout_runs, read back here by its token. Returns the token and how many rows the
/// pass claimed.
/// Runs `f` (read-only SPI) on a snapshot taken now, so that it sees what other processes
/// committed since the statement began. Popped afterwards, or by (sub)transaction abort.
fn with_fresh_snapshot<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the snapshot stack discipline of SPI callers.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let r = f();
    unsafe { pg_sys::PopActiveSnapshot() };
    r
}

fn pass_in_background(mode: &str, batch: i32, older_than: Option<Duration>) -> (i64, i32) {
    // A repeatable-read snapshot would not see the pass's report.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
                "payouts are sent from a process of their own; call this at READ COMMITTED".into(),
            ),
            "payouts",
        );
    }
    // The pass waits on no one but may have to wait on this transaction's row locks (an order
    // it queued a stage of, say), while this transaction waits on the pass: a wait no
    // deadlock detector sees. A transaction that has written nothing holds no such lock.
    if unsafe { pg_sys::GetTopTransactionIdIfAny() } != pg_sys::InvalidTransactionId {
        raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_ACTIVE_SQL_TRANSACTION,
                "payouts are sent from a process of their own, which could wait on this transaction's writes: call \
                 this in a transaction that has written nothing (commit first; in pg_cron, give it a job of its own)"
                    .into(),
            ),
            "payouts",
        );
    }
    let token = (seed() >> 1) as i64;
    let base = gucs::text(&gucs::STRIPE_API_BASE).unwrap_or_default();
    let extra = format!(
        "{mode} {token} {batch} {} {base}",
        older_than.map(|d| d.as_secs()).unwrap_or(0)
    );
    if extra.len() >= 127 {
        bad("sponsorship.stripe_api_base is too long to hand to a payout process (at most ~80 characters)".into());
    }
    let worker = BackgroundWorkerBuilder::new(PAYOUT_PASS_TYPE)
        .set_type(PAYOUT_PASS_TYPE)
        .set_library("sponsorship")
        .set_function("sponsorship_payout_pass_main")
        .set_argument(Some(pg_sys::Datum::from(unsafe { pg_sys::MyDatabaseId }.to_u32() as usize)))
        .set_extra(&extra)
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .enable_spi_access()
        .set_restart_time(None)
        .load_dynamic();
    let Ok(worker) = worker else {
        raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_RESOURCES,
                "no background worker slot is free for a payout pass; raise max_worker_processes".into(),
            ),
            "payouts",
        );
    };
    if worker.wait_for_shutdown().is_err() {
        raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
                "the payout process stopped before it finished (the server is shutting down?)".into(),
            ),
            "payouts",
        );
    }
    // a read-only select on a fresh snapshot (the pass committed after this statement began):
    // pgrx's Spi::get_* would mark this transaction as writing (assign it an xid), and the
    // next pass in it would then be refused by the check above
    let (claimed, error) = with_fresh_snapshot(|| Spi::connect(|c| {
        c.select(
            "SELECT claimed, error FROM sponsorship.payout_runs WHERE token = $1",
            Some(1),
            &[token.into()],
        )?
        .first()
        .get_two::<i32, String>()
    }))
    .unwrap_or((None, None));
    if let Some(e) = error {
        raise(
            &Plain(PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR, format!("payouts were not sent: {e}")),
            "payouts",
        );
    }
    match claimed {
        Some(n) => (token, n),
        None => raise(
            &Plain(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "the payout process ended without reporting; see the server log".into(),
            ),
            "payouts",
        ),
    }
}

/// Sends up to `p_batch` ready payouts (and resends those whose outcome is unknown) from a
/// background process of its own — claim, commit, Stripe, record, each committed on its own —
/// and returns how many it attempted. For pg_cron and direct calls, at READ COMMITTED.
#[pg_extern(volatile, parallel_unsafe)]
pub fn process_payout_queue(p_batch: default!(i32, 10)) -> i32 {
    if !(1..=10_000).contains(&p_batch) {
        bad(format!("p_batch must be between 1 and 10000, got {p_batch}"));
    }
    pass_in_background("process", p_batch, None).1
}

/// Resolves payouts whose outcome is unknown — claimed longer than `p_older_than` ago
/// without a recorded result (a sender crashed after the request may have reached Stripe) —
/// by resending each with its own idempotency key: Stripe answers with what it did the
/// first time. Returns each payout and how it ended.
#[pg_extern(volatile, parallel_unsafe)]
pub fn reconcile_payouts(
    p_older_than: default!(Option<pgrx::datum::Interval>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(payout_id, Uuid),
        name!(action, String),
        name!(outcome, String),
        name!(stripe_id, Option<String>),
        name!(error, Option<String>),
    ),
> {
    let older = match p_older_than {
        None => lease(),
        Some(i) => {
            let micros = i.as_micros();
            if micros < 0 {
                bad("p_older_than must not be negative".into());
            }
            Duration::from_micros(micros as u64)
        }
    };
    let (token, _) = pass_in_background("reconcile", 10_000, Some(older));
    let detail = with_fresh_snapshot(|| Spi::connect(|c| {
        c.select(
            "SELECT detail FROM sponsorship.payout_runs WHERE token = $1",
            Some(1),
            &[token.into()],
        )?
        .first()
        .get_one::<pgrx::JsonB>()
    }))
    .ok()
    .flatten()
    .map(|j| j.0)
    .unwrap_or(Value::Array(Vec::new()));
    let rows: Vec<_> = detail
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let id = parse_uuid(e.get("payout_id")?.as_str()?)?;
            Some((
                id,
                e.get("action")?.as_str()?.to_string(),
                e.get("outcome")?.as_str()?.to_string(),
                e.get("stripe_id").and_then(Value::as_str).map(str::to_owned),
                e.get("error").and_then(Value::as_str).map(str::to_owned),
            ))
        })
        .collect();
    TableIterator::new(rows)
}

/// A UUID written in its usual hyphenated hexadecimal form.
fn parse_uuid(s: &str) -> Option<Uuid> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, out) in b.iter_mut().enumerate() {
        *out = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Uuid::from_bytes(b))
}

/// The short-lived process of `process_payout_queue()` and `reconcile_payouts()`.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sponsorship_payout_pass_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let db = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), None);
    let extra = BackgroundWorker::get_extra().to_string();
    let mut parts = extra.splitn(5, ' ');
    let mode = parts.next().unwrap_or("process");
    let token: i64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let batch: i32 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(10);
    let older: u64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let base = parts.next().map(str::to_owned).filter(|b| !b.is_empty());
    let spec = PassSpec {
        source: if mode == "reconcile" { "reconcile_payouts" } else { "process_payout_queue" },
        token,
        batch,
        base,
        only_unknown: (mode == "reconcile").then(|| Duration::from_secs(older)),
    };
    if let Err(e) = run_pass(&spec) {
        log!("{PAYOUT_PASS_TYPE}: {e}");
    }
}

/// Registers the payout worker when the library is being preloaded.
pub fn register_worker() {
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new(PAYOUT_WORKER_TYPE)
        .set_type(PAYOUT_WORKER_TYPE)
        .set_library("sponsorship")
        .set_function("sponsorship_payout_worker_main")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

/// The payout worker: queues automatic payouts that are due, then sends what is ready,
/// without sleeping while full batches come back.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sponsorship_payout_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::text(&gucs::WORKER_DATABASE).unwrap_or_else(|| "postgres".into());
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("{PAYOUT_WORKER_TYPE} started in database \"{database}\"");
    let mut backoff = Duration::ZERO;
    let mut last_auto = std::time::Instant::now() - Duration::from_secs(3600);
    // the platform's default fee as last logged by this worker (audit_log)
    let mut observed_fee: Option<i32> = None;
    loop {
        let nap = Duration::from_millis(gucs::PAYOUT_NAPTIME_MS.get().max(10) as u64) + backoff;
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break;
        }
        crate::worker::reload_settings_if_signalled();
        if !gucs::PAYOUT_WORKER_ENABLED.get() {
            continue;
        }
        let installed = in_transaction(extension_installed).unwrap_or(false);
        if !installed {
            backoff = Duration::from_secs(10);
            continue;
        }
        let fee = gucs::PLATFORM_FEE_BPS.get();
        if observed_fee != Some(fee) {
            match in_transaction(|| Spi::run("SELECT sponsorship.observe_platform_settings()"))
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(()) => observed_fee = Some(fee),
                Err(e) => warning!("{PAYOUT_WORKER_TYPE}: logging the platform fee setting failed: {e}"),
            }
        }
        if last_auto.elapsed() >= Duration::from_secs(60) {
            last_auto = std::time::Instant::now();
            if let Err(e) = in_transaction(|| Spi::run("SELECT sponsorship.queue_due_payouts()"))
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                warning!("{PAYOUT_WORKER_TYPE}: queueing automatic payouts failed: {e}");
            }
        }
        loop {
            let batch = gucs::PAYOUT_BATCH_SIZE.get().max(1);
            let spec = PassSpec {
                source: "worker",
                token: (seed() >> 1) as i64,
                batch,
                base: None,
                only_unknown: None,
            };
            match run_pass(&spec) {
                Ok(c) => {
                    backoff = Duration::ZERO;
                    if c.claimed < batch || BackgroundWorker::sigterm_received() {
                        break;
                    }
                    // between full batches too: being switched off takes effect at once
                    crate::worker::reload_settings_if_signalled();
                    if !gucs::PAYOUT_WORKER_ENABLED.get() {
                        break;
                    }
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(300));
                    warning!("{PAYOUT_WORKER_TYPE}: payout pass failed, retrying in {backoff:?}: {e}");
                    break;
                }
            }
        }
    }
    log!("{PAYOUT_WORKER_TYPE} stopped");
}
