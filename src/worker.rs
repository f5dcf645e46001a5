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

enum Pass {
    /// The extension is not installed in the worker's database (yet).
    NotInstalled,
    Processed(i32),
}

fn drain_once(batch: i32) -> Pass {
    let installed = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'sponsorship')",
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if !installed {
        return Pass::NotInstalled;
    }
    let n = Spi::get_one_with_args::<i32>(
        "SELECT sponsorship.update_sponsorship_matches($1)",
        &[batch.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(0);
    Pass::Processed(n)
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

    let mut backoff = Duration::ZERO;
    loop {
        let nap = Duration::from_millis(gucs::WORKER_NAPTIME_MS.get().max(10) as u64) + backoff;
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break; // SIGTERM
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if !gucs::WORKER_ENABLED.get() {
            continue;
        }
        // Drain without sleeping while full batches come back.
        loop {
            let batch = gucs::WORKER_BATCH_SIZE.get().max(1);
            let outcome =
                PgTryBuilder::new(|| Ok(BackgroundWorker::transaction(|| drain_once(batch))))
                    .catch_others(|e| {
                        unsafe { pg_sys::AbortCurrentTransaction() };
                        let msg = match e {
                            pg_sys::panic::CaughtError::PostgresError(r)
                            | pg_sys::panic::CaughtError::ErrorReport(r)
                            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                                r.message().to_string()
                            }
                        };
                        Err(msg)
                    })
                    .execute();
            match outcome {
                Ok(Pass::Processed(n)) => {
                    backoff = Duration::ZERO;
                    if n < batch || BackgroundWorker::sigterm_received() {
                        break;
                    }
                }
                Ok(Pass::NotInstalled) => {
                    backoff = Duration::from_secs(10);
                    break;
                }
                Err(msg) => {
                    backoff = (backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                    warning!(
                        "{WORKER_TYPE} {number}: batch failed, retrying in {:?}: {msg}",
                        backoff
                    );
                    break;
                }
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
