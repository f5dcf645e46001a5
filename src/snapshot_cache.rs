//! When a backend may reuse what it read in an earlier call: the rules of the match-input
//! cache, without Postgres. (The SQL glue is `api::match_cache`.)
//!
//! Every transaction that changes a match input leaves one row, keyed by its transaction id,
//! in `sponsorship.match_input_changes`, in the same transaction as the change. A snapshot
//! therefore sees a change exactly when it sees the change's log row. A cache remembers the
//! xmin of the snapshot it was read with and the log rows at or above that xmin that the
//! snapshot saw; rows below the xmin belong to transactions that had finished before it, so
//! every later snapshot sees them too. A later snapshot sees the same data if and only if it
//! sees the same rows at or above that xmin — which is one indexed range read.
//!
//! Whether it is worth *building* a cache is a second question (see [`Rental`]).

use std::time::Duration;

/// What the change log looks like from the snapshot of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// xmin of the snapshot.
    pub xmin: i64,
    /// The current transaction's id, when it has one.
    pub me: Option<i64>,
    /// Log rows with xid at or below this have been pruned.
    pub pruned_upto: i64,
    /// Log rows visible to the snapshot with xid at or above the xmin asked about, ascending.
    pub changes: Vec<i64>,
}

/// Who is asking: everything row level security decides from, so that one caller never
/// reuses what another was allowed to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Viewer {
    pub role: u32,
    pub claims: Option<String>,
    pub legacy_sub: Option<String>,
    pub row_security: Option<String>,
    pub acts_as_service: bool,
    pub bypasses_rls: bool,
}

/// What a cache was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub viewer: Viewer,
    pub xmin: i64,
    pub changes: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The cache holds exactly what this call's snapshot would read.
    Fresh,
    /// Something changed (or someone else is asking): read again.
    Stale,
    /// Neither use nor rebuild a cache in this call: the transaction wrote match inputs
    /// itself, or its snapshot is older than the cache's.
    Bypass,
}

impl Observation {
    /// The current transaction has changed a match input (its own row is visible to it).
    pub fn wrote_inputs(&self) -> bool {
        self.me.is_some_and(|me| self.changes.binary_search(&me).is_ok())
    }

    /// The token a cache read in this call (after this observation) is valid for. Rows
    /// below the snapshot's xmin are dropped: every later snapshot sees them as this one did.
    pub fn token(&self, viewer: Viewer) -> Token {
        Token {
            viewer,
            xmin: self.xmin,
            changes: self
                .changes
                .iter()
                .copied()
                .filter(|&x| x >= self.xmin)
                .collect(),
        }
    }
}

impl Token {
    /// Whether a cache read with this token serves a call that observed `now` (asked about
    /// rows from `self.xmin` up) as `viewer`.
    pub fn judge(&self, viewer: &Viewer, now: &Observation) -> Verdict {
        if now.wrote_inputs() || now.xmin < self.xmin {
            return Verdict::Bypass;
        }
        if *viewer != self.viewer || now.pruned_upto >= self.xmin || now.changes != self.changes {
            return Verdict::Stale;
        }
        Verdict::Fresh
    }
}

/// Ski rental: a cache of the whole marketplace is built only once the calls that went
/// without it have cost as much as building it did last time. A backend that scores a few
/// pairs never pays for a build, a busy one soon gets the cache, and a marketplace that
/// changes all the time costs at most about twice what it would cost without any cache.
#[derive(Debug, Clone)]
pub struct Rental {
    spent: Duration,
    price: Duration,
}

impl Rental {
    pub fn new(first_price: Duration) -> Rental {
        Rental {
            spent: Duration::ZERO,
            price: first_price,
        }
    }

    /// A call went without the cache and took `d`.
    pub fn paid(&mut self, d: Duration) {
        self.spent += d;
    }

    pub fn should_build(&self) -> bool {
        self.spent >= self.price
    }

    /// A build happened and took `d`: that is the price of the next one.
    pub fn built(&mut self, d: Duration) {
        self.spent = Duration::ZERO;
        self.price = d;
    }

    pub fn price(&self) -> Duration {
        self.price
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(xmin: i64, me: Option<i64>, changes: &[i64]) -> Observation {
        Observation {
            xmin,
            me,
            pruned_upto: 0,
            changes: changes.to_vec(),
        }
    }

    fn viewer(role: u32) -> Viewer {
        Viewer {
            role,
            ..Viewer::default()
        }
    }

    #[test]
    fn the_same_visible_changes_mean_fresh() {
        let tok = obs(100, None, &[101, 105]).token(viewer(10));
        // a later snapshot (higher xmin) that sees the same rows
        assert_eq!(tok.judge(&viewer(10), &obs(120, None, &[101, 105])), Verdict::Fresh);
    }

    #[test]
    fn a_newly_visible_change_makes_it_stale() {
        let tok = obs(100, None, &[101]).token(viewer(10));
        assert_eq!(tok.judge(&viewer(10), &obs(120, None, &[101, 110])), Verdict::Stale);
        // a change that was in progress when the cache was read and has committed since
        assert_eq!(tok.judge(&viewer(10), &obs(120, None, &[100, 101])), Verdict::Stale);
    }

    #[test]
    fn a_token_keeps_only_the_rows_from_its_own_xmin_up() {
        // observed from an older cache's xmin (90) by a snapshot whose xmin is 100
        let tok = obs(100, None, &[91, 99, 100, 104]).token(viewer(10));
        assert_eq!(tok.changes, vec![100, 104]);
        // so the next call, which reads from 100 up, finds it fresh
        assert_eq!(tok.judge(&viewer(10), &obs(100, None, &[100, 104])), Verdict::Fresh);
    }

    #[test]
    fn another_viewer_never_reuses_the_cache() {
        let tok = obs(100, None, &[]).token(viewer(10));
        assert_eq!(tok.judge(&viewer(11), &obs(100, None, &[])), Verdict::Stale);
        let mut with_claims = viewer(10);
        with_claims.claims = Some(r#"{"sub":"a"}"#.into());
        assert_eq!(tok.judge(&with_claims, &obs(100, None, &[])), Verdict::Stale);
    }

    #[test]
    fn own_writes_bypass_the_cache() {
        let tok = obs(100, None, &[]).token(viewer(10));
        // this transaction (xid 130) has written a match input: its row is visible to it
        assert_eq!(tok.judge(&viewer(10), &obs(120, Some(130), &[130])), Verdict::Bypass);
        // an xid without a log row (it wrote something else) does not
        assert_eq!(tok.judge(&viewer(10), &obs(120, Some(130), &[])), Verdict::Fresh);
    }

    #[test]
    fn an_older_snapshot_bypasses_the_cache() {
        let tok = obs(100, None, &[]).token(viewer(10));
        assert_eq!(tok.judge(&viewer(10), &obs(90, None, &[])), Verdict::Bypass);
    }

    #[test]
    fn pruning_past_the_cache_makes_it_stale() {
        let tok = obs(100, None, &[]).token(viewer(10));
        let mut now = obs(120, None, &[]);
        now.pruned_upto = 99;
        assert_eq!(tok.judge(&viewer(10), &now), Verdict::Fresh);
        now.pruned_upto = 100;
        assert_eq!(tok.judge(&viewer(10), &now), Verdict::Stale);
    }

    #[test]
    fn rental_builds_once_the_calls_without_cost_the_last_build() {
        let mut r = Rental::new(Duration::from_millis(10));
        for _ in 0..9 {
            r.paid(Duration::from_millis(1));
            assert!(!r.should_build());
        }
        r.paid(Duration::from_millis(1));
        assert!(r.should_build());
        r.built(Duration::from_millis(50));
        assert!(!r.should_build());
        assert_eq!(r.price(), Duration::from_millis(50));
        r.paid(Duration::from_millis(49));
        assert!(!r.should_build());
        r.paid(Duration::from_millis(1));
        assert!(r.should_build());
    }
}
