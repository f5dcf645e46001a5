//! Operations: the one thing upkeep needs that SQL cannot do — write a log row that survives
//! the failure it describes. A failed materialized-view refresh is raised to its caller, whose
//! transaction then rolls back, and a row written by that transaction would go with it; so
//! `refresh_materialized_view()` hands the failure to a short-lived background process that
//! writes it to `mv_refresh_log` in a transaction of its own.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;

const REFRESH_LOG_TYPE: &str = "sponsorship refresh log";

/// At most this many bytes travel in a background worker's `bgw_extra` (128 with the NUL).
const EXTRA_MAX: usize = 127;

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The `bgw_extra` of a failure: view, SQLSTATE, start (µs since the Unix epoch), whether the
/// refresh was concurrent, and as much of the message as fits (tabs and newlines become
/// spaces). The full message goes to the caller with the error.
fn failure_extra(
    view: &str,
    sqlstate: &str,
    started_us: i64,
    concurrent: bool,
    message: &str,
) -> String {
    let head = format!(
        "{}\t{}\t{}\t{}\t",
        cut(view, 63),
        cut(sqlstate, 5),
        started_us,
        concurrent as u8
    );
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let room = EXTRA_MAX.saturating_sub(head.len());
    let body = if flat.len() > room {
        format!("{}…", cut(&flat, room.saturating_sub('…'.len_utf8())))
    } else {
        flat
    };
    format!("{head}{body}")
}

/// Writes the `error` row of a failed refresh (started at `p_started_epoch`, seconds since 1970) to `mv_refresh_log` from a process of its own,
/// so that it stays when the caller's transaction rolls back; waits for it. Returns whether
/// the row was written (a warning says why not). For `refresh_materialized_view()`.
#[pg_extern(volatile)]
pub fn log_refresh_failure(
    p_view: &str,
    p_started_epoch: f64,
    p_concurrent: bool,
    p_sqlstate: &str,
    p_message: &str,
) -> bool {
    let started_us = (p_started_epoch * 1e6).round() as i64;
    let extra = failure_extra(p_view, p_sqlstate, started_us, p_concurrent, p_message);
    let worker = BackgroundWorkerBuilder::new(REFRESH_LOG_TYPE)
        .set_type(REFRESH_LOG_TYPE)
        .set_library("sponsorship")
        .set_function("sponsorship_refresh_log_main")
        .set_argument(Some(pg_sys::Datum::from(
            unsafe { pg_sys::MyDatabaseId }.to_u32() as usize,
        )))
        .set_extra(&extra)
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .enable_spi_access()
        .set_restart_time(None)
        .load_dynamic();
    let Ok(worker) = worker else {
        warning!(
            "the failed refresh of sponsorship.{p_view} is not in mv_refresh_log: no background worker slot was free \
             (raise max_worker_processes)"
        );
        return false;
    };
    if worker.wait_for_shutdown().is_err() {
        warning!("the failed refresh of sponsorship.{p_view} may not be in mv_refresh_log: its writer stopped early");
        return false;
    }
    true
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn sponsorship_refresh_log_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let db = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), None);
    let extra = BackgroundWorker::get_extra().to_string();
    let mut parts = extra.splitn(5, '\t');
    let view = parts.next().unwrap_or("").to_string();
    let sqlstate = parts.next().unwrap_or("").to_string();
    let started_us: i64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let concurrent = parts.next() == Some("1");
    let message = format!("{sqlstate}: {}", parts.next().unwrap_or(""));
    let result = BackgroundWorker::transaction(|| {
        Spi::run_with_args(
            "INSERT INTO sponsorship.mv_refresh_log
                    (view_name, started_at, finished_at, duration_ms, concurrent, status, error)
             SELECT $1, t, clock_timestamp(), GREATEST(0, extract(epoch FROM clock_timestamp() - t) * 1000),
                    $3, 'error', $4
               FROM pg_catalog.to_timestamp($2::float8 / 1e6) t",
            &[view.clone().into(), started_us.into(), concurrent.into(), message.into()],
        )
    });
    if let Err(e) = result {
        log!("{REFRESH_LOG_TYPE}: could not log the failed refresh of {view}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_fits_and_keeps_its_fields() {
        let long = "x".repeat(500);
        let e = failure_extra(
            "mv_event_quality_scores",
            "22012",
            1_700_000_000_000_000,
            true,
            &long,
        );
        assert!(e.len() <= EXTRA_MAX, "{}", e.len());
        let f: Vec<&str> = e.splitn(5, '\t').collect();
        assert_eq!(
            &f[..4],
            &["mv_event_quality_scores", "22012", "1700000000000000", "1"]
        );
        assert!(f[4].ends_with('…'));
        // control characters cannot break the fields; multi-byte text is cut on a boundary
        let e = failure_extra("v", "XX000", 0, false, "a\tb\nc");
        assert_eq!(e, "v\tXX000\t0\t0\ta b c");
        let e = failure_extra("v", "XX000", 0, false, &"é".repeat(200));
        assert!(e.len() <= EXTRA_MAX && e.ends_with('…'));
    }
}
