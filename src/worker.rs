//! The recalculation worker: drains `fit_recalc_queue` continuously when `sponsorship` is in
//! `shared_preload_libraries`. One transaction per batch; an error is logged and the worker
//! backs off instead of dying; SIGHUP reloads settings, SIGTERM stops it.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgTryBuilder;

use crate::gucs;

pub const WORKER_TYPE: &str = "sponsorship recalc worker";

/// Registers the worker when the library is being preloaded; otherwise says why not (the
/// queue still drains through update_sponsorship_matches() and pg_cron).
pub fn register() {
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress } {
        debug1!(
            "sponsorship: recalc worker not started: add sponsorship to shared_preload_libraries to run it; \
             fit_recalc_queue can still be drained with sponsorship.update_sponsorship_matches() or pg_cron"
        );
        return;
    }
    for i in 0..gucs::WORKER_COUNT.get().max(0) {
        BackgroundWorkerBuilder::new(&format!("{WORKER_TYPE} {}", i + 1))
            .set_type(WORKER_TYPE)
            .set_library("sponsorship")
            .set_function("sponsorship_recalc_worker_main")
            .set_argument(Some(pg_sys::Datum::from(i as usize)))
            .enable_spi_access()
            .set_restart_time(Some(Duration::from_secs(10)))
            .load();
    }
}

/// Runs `f` in a transaction of its own (in a background worker), turning an ERROR into
/// `Err(message)`; the transaction is rolled back then.
pub(crate) fn in_transaction<R>(
    f: impl FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
) -> Result<R, String> {
    PgTryBuilder::new(|| Ok(BackgroundWorker::transaction(f)))
        .catch_others(|e| {
            unsafe { pg_sys::AbortCurrentTransaction() };
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r)
                | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
            })
        })
        .execute()
}

/// Whether the extension is installed in the database this worker is connected to (call
/// inside a transaction).
pub(crate) fn extension_installed() -> bool {
    Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'sponsorship')")
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Runs `sql` (one `$1` integer argument, one integer result) in a transaction of its own.
/// `Ok(None)`: the extension is not installed in this database (yet); `Err`: the pass failed
/// and was rolled back, with the error's message.
/// Re-reads the configuration files if a SIGHUP came since the last look (both workers call
/// it after each nap and between the batches of a backlog).
pub(crate) fn reload_settings_if_signalled() {
    if BackgroundWorker::sighup_received() {
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
}

fn run_pass(sql: &'static str, batch: i32) -> Result<Option<i64>, String> {
    in_transaction(|| {
        extension_installed().then(|| {
            Spi::get_one_with_args::<i64>(sql, &[batch.into()])
                .ok()
                .flatten()
                .unwrap_or(0)
        })
    })
}

/// Backs a failing kind of pass off exponentially, between `min` and `max`.
struct Backoff {
    delay: Duration,
    until: Option<std::time::Instant>,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { delay: Duration::ZERO, until: None, min, max }
    }

    fn ready(&self) -> bool {
        self.until.is_none_or(|t| std::time::Instant::now() >= t)
    }

    fn failed(&mut self) -> Duration {
        self.delay = (self.delay * 2).clamp(self.min, self.max);
        self.until = Some(std::time::Instant::now() + self.delay);
        self.delay
    }

    fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
        self.until = None;
    }
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sponsorship_recalc_worker_main(arg: pg_sys::Datum) {
    let number = arg.value() + 1;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::WORKER_DATABASE
        .get()
        .and_then(|c| c.to_str().ok().map(str::to_owned))
        .unwrap_or_else(|| "postgres".into());
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    log!("{WORKER_TYPE} {number} started in database \"{database}\"");

    let mut recalc = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    // A missing model is a configuration problem: retry it rarely, scoring goes on meanwhile.
    let mut embedding = Backoff::new(Duration::from_secs(5), Duration::from_secs(600));
    let mut not_installed = false;
    loop {
        let mut nap = Duration::from_millis(gucs::WORKER_NAPTIME_MS.get().max(10) as u64);
        if not_installed {
            nap = nap.max(Duration::from_secs(10));
        }
        if !recalc.ready() {
            nap += recalc.delay;
        }
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break; // SIGTERM
        }
        reload_settings_if_signalled();
        if !gucs::WORKER_ENABLED.get() {
            continue;
        }
        // Work without sleeping while full batches come back. Embeddings first: a new
        // embedding queues the rescoring of its sponsor or event.
        loop {
            let mut more = false;
            if embedding.ready() {
                let batch = gucs::EMBED_BATCH_SIZE.get().max(1);
                match run_pass("SELECT sponsorship.backfill_embeddings($1)", batch) {
                    Ok(None) => not_installed = true,
                    Ok(Some(n)) => {
                        not_installed = false;
                        embedding.succeeded();
                        more |= n >= batch as i64;
                    }
                    Err(msg) => {
                        let delay = embedding.failed();
                        warning!("{WORKER_TYPE} {number}: computing embeddings failed, retrying in {delay:?}: {msg}");
                    }
                }
            }
            if recalc.ready() && !not_installed {
                let batch = gucs::WORKER_BATCH_SIZE.get().max(1);
                match run_pass("SELECT sponsorship.update_sponsorship_matches($1)::int8", batch) {
                    Ok(None) => not_installed = true,
                    Ok(Some(n)) => {
                        recalc.succeeded();
                        more |= n >= batch as i64;
                    }
                    Err(msg) => {
                        let delay = recalc.failed();
                        warning!("{WORKER_TYPE} {number}: batch failed, retrying in {delay:?}: {msg}");
                    }
                }
            }
            if !more || BackgroundWorker::sigterm_received() {
                break;
            }
            // a backlog does not delay a reload: switched off (or resized), it stops here
            reload_settings_if_signalled();
            if !gucs::WORKER_ENABLED.get() {
                break;
            }
        }
    }
    log!("{WORKER_TYPE} {number} stopped");
}

/// Whether the recalculation worker is running, and if not, why.
#[pg_extern(volatile)]
pub fn worker_status() -> TableIterator<
    'static,
    (
        name!(running, bool),
        name!(pid, Option<i32>),
        name!(detail, String),
    ),
> {
    let (pid, running) = Spi::get_two_with_args::<i32, i64>(
        "SELECT min(pid), count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = $1",
        &[WORKER_TYPE.into()],
    )
    .unwrap_or((None, None));
    let running = running.unwrap_or(0);
    let configured = gucs::WORKER_COUNT.get();
    let preloaded = Spi::get_one::<String>("SELECT current_setting('shared_preload_libraries')")
        .ok()
        .flatten()
        .is_some_and(|s| {
            s.split(',')
                .any(|l| l.trim() == "sponsorship" || l.trim().ends_with("/sponsorship"))
        });
    let detail = match (pid, preloaded) {
        (Some(_), _) => format!(
            "{running} of {configured} workers draining fit_recalc_queue in database \"{}\"",
            gucs::WORKER_DATABASE.get().and_then(|c| c.to_str().ok().map(str::to_owned)).unwrap_or_default()
        ),
        (None, true) if configured == 0 => "not running: sponsorship.worker_count = 0; drain the queue with \
            sponsorship.update_sponsorship_matches() (pg_cron or direct calls)"
            .into(),
        (None, false) => "not running: sponsorship is not in shared_preload_libraries; \
                          drain the queue with sponsorship.update_sponsorship_matches() (pg_cron or direct calls)"
            .into(),
        (None, true) => "not running: preloaded but not started (it restarts 10 s after a crash); see the server log".into(),
    };
    TableIterator::once((pid.is_some(), pid, detail))
}
