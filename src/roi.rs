//! Post-event return on a sponsorship (SPEC §7b): what an activation delivered against what
//! its package promised, and what it cost per thousand impressions and per engaged
//! attendee. Pure arithmetic over facts counted in SQL (`evaluate_sponsorship_roi()` in
//! `sql/80_roi_audit.sql`); integers throughout, money in the order's minor units.
//!
//! Definitions (the same words as the keys of `event_sponsorships.roi_summary`):
//! - *impressions*: the sponsor's placement was shown (`event_impressions.kind = 'view'`);
//!   clicks and engagements are counted beside them.
//! - *unique reach*: distinct `viewer_key`s among the sponsor's rows (`identified_reach`),
//!   plus every view without a key (`unattributed_impressions`), which cannot be told from a
//!   repeat view and so counts as a person: exact when every view has a key
//!   (`reach_basis = 'unique_viewers'`), an upper bound otherwise (`'mixed'`, or
//!   `'impressions'` when no row has a key). The figure moves smoothly from one basis to the
//!   next: one keyed row among thousands of unkeyed views changes it by at most one.
//! - *engaged attendees*: distinct viewers who clicked, engaged, or saw a placement through
//!   (`completed`).
//! - *verdict*: unique reach against the package's `expected_reach` — `exceeded` from 120 %,
//!   `met` from 100 %, `nearly_met` from 80 %, `under_delivered` below; `no_delivery` when
//!   nothing was recorded, `no_expectation` when the package promised no reach.

use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::money::currency::{Currency, CurrencyError};

/// Version of the figures' definitions, stored with every summary.
pub const ROI_VERSION: u32 = 1;

/// Reach at or above this share of the expected reach (in percent) is `exceeded`.
pub const EXCEEDED_PERCENT: i128 = 120;
/// Reach at or above this share is `met`.
pub const MET_PERCENT: i128 = 100;
/// Reach at or above this share is `nearly_met`.
pub const NEARLY_MET_PERCENT: i128 = 80;

/// What SQL counted for one activation over its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub currency: Currency,
    /// What the sponsor paid (the order's amount), in minor units.
    pub cost: i64,
    pub expected_reach: Option<i64>,
    pub event_attendees: Option<i64>,
    pub views: i64,
    pub clicks: i64,
    pub engagements: i64,
    /// Rows (of any kind) that carry a viewer key.
    pub keyed_rows: i64,
    /// Views without a viewer key.
    pub unkeyed_views: i64,
    pub unique_viewers: i64,
    pub engaged_viewers: i64,
    pub dwell_ms_sum: i64,
    pub dwell_samples: i64,
    pub completions: i64,
    pub completion_samples: i64,
    pub ticket_views: i64,
    pub tickets: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RoiError {
    #[error("ROI facts: {0} is missing or not a whole number")]
    NotAnInteger(&'static str),
    #[error("ROI facts: {0} must not be negative (it is {1})")]
    Negative(&'static str, i64),
    #[error("ROI facts: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Currency(#[from] CurrencyError),
    #[error("ROI facts: currency is missing or not a string")]
    NoCurrency,
}

/// How unique reach was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReachBasis {
    /// Distinct viewer keys; every view had one.
    UniqueViewers,
    /// Distinct viewer keys plus the views that had none (an upper bound).
    Mixed,
    /// No viewer keys were recorded: impressions stand in (an upper bound).
    Impressions,
    /// Nothing was recorded.
    Nothing,
}

impl ReachBasis {
    pub fn name(self) -> &'static str {
        match self {
            ReachBasis::UniqueViewers => "unique_viewers",
            ReachBasis::Mixed => "mixed",
            ReachBasis::Impressions => "impressions",
            ReachBasis::Nothing => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    NoDelivery,
    NoExpectation,
    Exceeded,
    Met,
    NearlyMet,
    UnderDelivered,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::NoDelivery => "no_delivery",
            Verdict::NoExpectation => "no_expectation",
            Verdict::Exceeded => "exceeded",
            Verdict::Met => "met",
            Verdict::NearlyMet => "nearly_met",
            Verdict::UnderDelivered => "under_delivered",
        }
    }
}

/// The figures of one activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub reach: i64,
    pub reach_basis: ReachBasis,
    /// Reach / expected reach, to four decimals.
    pub reach_delivered_ratio: Option<f64>,
    pub impressions_per_person: Option<f64>,
    pub click_through_rate: Option<f64>,
    /// `None` when no viewer keys were recorded.
    pub engaged_attendees: Option<i64>,
    pub engagement_rate: Option<f64>,
    pub avg_dwell_ms: Option<i64>,
    pub completion_rate: Option<f64>,
    pub ticket_conversion_rate: Option<f64>,
    /// Cost per thousand impressions, minor units, rounded half up.
    pub cpm: Option<i64>,
    pub cost_per_engaged_attendee: Option<i64>,
    pub cost_per_thousand_reach: Option<i64>,
    pub verdict: Verdict,
    pub verdict_reason: String,
}

/// `n / d` rounded half up, for non-negative `n` and positive `d`.
fn div_round(n: i128, d: i128) -> i128 {
    (2 * n + d) / (2 * d)
}

/// `n / d` rounded half up to four decimals, as a JSON-friendly float (exactly the decimal
/// it prints as).
fn ratio4(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| div_round(n as i128 * 10_000, d as i128) as f64 / 10_000.0)
}

/// Money per unit: `cost * scale / count` minor units, rounded half up; `None` without a
/// count, or beyond a bigint (a cost of over 9.2e15 minor units per impression).
fn per(cost: i64, scale: i128, count: i64) -> Option<i64> {
    if count <= 0 {
        return None;
    }
    i64::try_from(div_round(cost as i128 * scale, count as i128)).ok()
}

/// Groups of three digits: 1234567 -> "1,234,567".
fn grouped(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

impl Facts {
    /// Checks that the counts can describe real rows.
    pub fn validate(&self) -> Result<(), RoiError> {
        let non_negative: [(&'static str, i64); 16] = [
            ("cost_cents", self.cost),
            ("expected_reach", self.expected_reach.unwrap_or(0)),
            ("event_attendees", self.event_attendees.unwrap_or(0)),
            ("views", self.views),
            ("clicks", self.clicks),
            ("engagements", self.engagements),
            ("keyed_rows", self.keyed_rows),
            ("unkeyed_views", self.unkeyed_views),
            ("unique_viewers", self.unique_viewers),
            ("engaged_viewers", self.engaged_viewers),
            ("dwell_ms_sum", self.dwell_ms_sum),
            ("dwell_samples", self.dwell_samples),
            ("completions", self.completions),
            ("completion_samples", self.completion_samples),
            ("ticket_views", self.ticket_views),
            ("tickets", self.tickets),
        ];
        for (name, v) in non_negative {
            if v < 0 {
                return Err(RoiError::Negative(name, v));
            }
        }
        let rows = self.views as i128 + self.clicks as i128 + self.engagements as i128;
        let checks: [(bool, &str); 7] = [
            (
                self.unkeyed_views <= self.views,
                "unkeyed_views exceeds views",
            ),
            (
                self.keyed_rows as i128 + self.unkeyed_views as i128 <= rows,
                "keyed_rows and unkeyed_views exceed the rows counted",
            ),
            (
                (self.keyed_rows > 0) == (self.unique_viewers > 0),
                "unique_viewers must be positive exactly when keyed_rows is",
            ),
            (
                self.unique_viewers <= self.keyed_rows,
                "unique_viewers exceeds keyed_rows",
            ),
            (
                self.engaged_viewers <= self.unique_viewers,
                "engaged_viewers exceeds unique_viewers",
            ),
            (
                self.dwell_samples as i128 <= rows,
                "dwell_samples exceeds the rows counted",
            ),
            (
                self.completions <= self.completion_samples
                    && self.completion_samples as i128 <= rows,
                "completions exceed completion_samples, or completion_samples the rows counted",
            ),
        ];
        for (ok, what) in checks {
            if !ok {
                return Err(RoiError::Inconsistent(what.to_string()));
            }
        }
        Ok(())
    }

    /// Reads the facts object that SQL builds (keys as in [`Facts::to_json`]).
    pub fn from_json(v: &Value) -> Result<Facts, RoiError> {
        let int = |k: &'static str| {
            v.get(k)
                .and_then(Value::as_i64)
                .ok_or(RoiError::NotAnInteger(k))
        };
        let opt = |k: &'static str| match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x.as_i64().map(Some).ok_or(RoiError::NotAnInteger(k)),
        };
        let code = v
            .get("currency")
            .and_then(Value::as_str)
            .ok_or(RoiError::NoCurrency)?;
        let facts = Facts {
            currency: Currency::from_code(code)?,
            cost: int("cost_cents")?,
            expected_reach: opt("expected_reach")?,
            event_attendees: opt("event_attendees")?,
            views: int("views")?,
            clicks: int("clicks")?,
            engagements: int("engagements")?,
            keyed_rows: int("keyed_rows")?,
            unkeyed_views: int("unkeyed_views")?,
            unique_viewers: int("unique_viewers")?,
            engaged_viewers: int("engaged_viewers")?,
            dwell_ms_sum: int("dwell_ms_sum")?,
            dwell_samples: int("dwell_samples")?,
            completions: int("completions")?,
            completion_samples: int("completion_samples")?,
            ticket_views: int("ticket_views")?,
            tickets: int("tickets")?,
        };
        facts.validate()?;
        Ok(facts)
    }

    /// The facts object, as [`Facts::from_json`] reads it.
    pub fn to_json(&self) -> Value {
        json!({
            "currency": self.currency.code,
            "cost_cents": self.cost,
            "expected_reach": self.expected_reach,
            "event_attendees": self.event_attendees,
            "views": self.views,
            "clicks": self.clicks,
            "engagements": self.engagements,
            "keyed_rows": self.keyed_rows,
            "unkeyed_views": self.unkeyed_views,
            "unique_viewers": self.unique_viewers,
            "engaged_viewers": self.engaged_viewers,
            "dwell_ms_sum": self.dwell_ms_sum,
            "dwell_samples": self.dwell_samples,
            "completions": self.completions,
            "completion_samples": self.completion_samples,
            "ticket_views": self.ticket_views,
            "tickets": self.tickets,
        })
    }
}

/// The figures of an activation from its facts (which [`Facts::validate`] accepted).
pub fn assess(f: &Facts) -> Assessment {
    let recorded = f.views + f.clicks + f.engagements;
    let (reach, reach_basis) = if f.keyed_rows > 0 && f.unkeyed_views > 0 {
        (
            f.unique_viewers.saturating_add(f.unkeyed_views),
            ReachBasis::Mixed,
        )
    } else if f.keyed_rows > 0 {
        (f.unique_viewers, ReachBasis::UniqueViewers)
    } else if f.views > 0 {
        (f.views, ReachBasis::Impressions)
    } else {
        (0, ReachBasis::Nothing)
    };
    let expected = f.expected_reach.filter(|&e| e > 0);
    let engaged = (f.keyed_rows > 0).then_some(f.engaged_viewers);

    let (verdict, verdict_reason) = match expected {
        _ if recorded == 0 => (
            Verdict::NoDelivery,
            "no placement of the sponsor was recorded at this event in the activation's window"
                .to_string(),
        ),
        None => (
            Verdict::NoExpectation,
            format!(
                "reached {} people; the package set no expected reach to judge against",
                grouped(reach)
            ),
        ),
        Some(e) => {
            let r = reach as i128 * 100;
            let verdict = if r >= EXCEEDED_PERCENT * e as i128 {
                Verdict::Exceeded
            } else if r >= MET_PERCENT * e as i128 {
                Verdict::Met
            } else if r >= NEARLY_MET_PERCENT * e as i128 {
                Verdict::NearlyMet
            } else {
                Verdict::UnderDelivered
            };
            let tenths = div_round(reach as i128 * 1000, e as i128);
            let what = match reach_basis {
                ReachBasis::Impressions => {
                    "impressions (no viewer keys: an upper bound of people)".to_string()
                }
                ReachBasis::Mixed => format!(
                    "people (an upper bound: {} without a viewer key count as people)",
                    match f.unkeyed_views {
                        1 => "1 view".to_string(),
                        n => format!("{} views", grouped(n)),
                    }
                ),
                _ => "people".to_string(),
            };
            (
                verdict,
                format!(
                    "reached {} {what} against {} expected ({}.{}%)",
                    grouped(reach),
                    grouped(e),
                    tenths / 10,
                    tenths % 10
                ),
            )
        }
    };

    Assessment {
        reach,
        reach_basis,
        reach_delivered_ratio: expected.and_then(|e| ratio4(reach, e)),
        impressions_per_person: match reach_basis {
            ReachBasis::UniqueViewers | ReachBasis::Mixed => ratio4(f.views, reach),
            _ => None,
        },
        click_through_rate: ratio4(f.clicks, f.views),
        engaged_attendees: engaged,
        engagement_rate: engaged.and_then(|n| ratio4(n, f.unique_viewers)),
        avg_dwell_ms: (f.dwell_samples > 0)
            .then(|| div_round(f.dwell_ms_sum as i128, f.dwell_samples as i128) as i64),
        completion_rate: ratio4(f.completions, f.completion_samples),
        ticket_conversion_rate: ratio4(f.tickets, f.ticket_views),
        cpm: per(f.cost, 1000, f.views),
        cost_per_engaged_attendee: engaged.and_then(|n| per(f.cost, 1, n)),
        cost_per_thousand_reach: per(f.cost, 1000, reach),
        verdict,
        verdict_reason,
    }
}

/// The summary object: the facts' headline counts and every figure, keyed as documented on
/// `event_sponsorships.roi_summary`.
pub fn summary(f: &Facts, a: &Assessment) -> Map<String, Value> {
    let v = json!({
        "roi_version": ROI_VERSION,
        "currency": f.currency.code,
        "currency_exponent": f.currency.exponent,
        "cost_cents": f.cost,
        "expected_reach": f.expected_reach,
        "impressions": f.views,
        "clicks": f.clicks,
        "engagements": f.engagements,
        "unique_reach": a.reach,
        "identified_reach": f.unique_viewers,
        "reach_basis": a.reach_basis.name(),
        "unattributed_impressions": f.unkeyed_views,
        "reach_delivered_ratio": a.reach_delivered_ratio,
        "impressions_per_person": a.impressions_per_person,
        "click_through_rate": a.click_through_rate,
        "engaged_attendees": a.engaged_attendees,
        "engagement_rate": a.engagement_rate,
        "avg_dwell_ms": a.avg_dwell_ms,
        "completions": f.completions,
        "completion_rate": a.completion_rate,
        "ticket_views": f.ticket_views,
        "tickets_sold": f.tickets,
        "ticket_conversion_rate": a.ticket_conversion_rate,
        "event_attendees": f.event_attendees,
        "cpm_cents": a.cpm,
        "cost_per_engaged_attendee_cents": a.cost_per_engaged_attendee,
        "cost_per_thousand_reach_cents": a.cost_per_thousand_reach,
        "verdict": a.verdict.name(),
        "verdict_reason": a.verdict_reason,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(cost: i64) -> Facts {
        Facts {
            currency: Currency::USD,
            cost,
            expected_reach: Some(1000),
            event_attendees: Some(800),
            views: 0,
            clicks: 0,
            engagements: 0,
            keyed_rows: 0,
            unkeyed_views: 0,
            unique_viewers: 0,
            engaged_viewers: 0,
            dwell_ms_sum: 0,
            dwell_samples: 0,
            completions: 0,
            completion_samples: 0,
            ticket_views: 0,
            tickets: 0,
        }
    }

    #[test]
    fn hand_computed_activation() {
        // 1,250 views by 1,100 people (all keyed), 50 clicks, 25 engagements; 132 engaged
        // people; $2,500.00 paid; 1,000 expected.
        let f = Facts {
            views: 1250,
            clicks: 50,
            engagements: 25,
            keyed_rows: 1325,
            unique_viewers: 1100,
            engaged_viewers: 132,
            dwell_ms_sum: 1_000_001,
            dwell_samples: 400,
            completions: 30,
            completion_samples: 120,
            ticket_views: 300,
            tickets: 45,
            ..usd(250_000)
        };
        f.validate().unwrap();
        let a = assess(&f);
        assert_eq!(a.reach, 1100);
        assert_eq!(a.reach_basis, ReachBasis::UniqueViewers);
        assert_eq!(a.reach_delivered_ratio, Some(1.1));
        assert_eq!(a.verdict, Verdict::Met);
        assert_eq!(
            a.verdict_reason,
            "reached 1,100 people against 1,000 expected (110.0%)"
        );
        // 250000 * 1000 / 1250 = 200000 cents per thousand impressions
        assert_eq!(a.cpm, Some(200_000));
        // 250000 / 132 = 1893.94 -> 1894
        assert_eq!(a.cost_per_engaged_attendee, Some(1894));
        // 250000 * 1000 / 1100 = 227272.7 -> 227273
        assert_eq!(a.cost_per_thousand_reach, Some(227_273));
        assert_eq!(a.click_through_rate, Some(0.04));
        assert_eq!(a.engagement_rate, Some(0.12));
        // 1000001 / 400 = 2500.0025 -> 2500
        assert_eq!(a.avg_dwell_ms, Some(2500));
        assert_eq!(a.completion_rate, Some(0.25));
        assert_eq!(a.ticket_conversion_rate, Some(0.15));
        assert_eq!(a.impressions_per_person, Some(1.1364));
    }

    #[test]
    fn verdict_thresholds_are_exact() {
        let with_reach = |reach: i64| {
            let f = Facts {
                views: reach,
                keyed_rows: reach,
                unique_viewers: reach,
                ..usd(100)
            };
            assess(&f).verdict
        };
        assert_eq!(with_reach(1200), Verdict::Exceeded);
        assert_eq!(with_reach(1199), Verdict::Met);
        assert_eq!(with_reach(1000), Verdict::Met);
        assert_eq!(with_reach(999), Verdict::NearlyMet);
        assert_eq!(with_reach(800), Verdict::NearlyMet);
        assert_eq!(with_reach(799), Verdict::UnderDelivered);
        assert_eq!(with_reach(1), Verdict::UnderDelivered);
        // 99,995 of 100,000 rounds to 1.0 as a ratio, but is not met
        let f = Facts {
            views: 99_995,
            keyed_rows: 99_995,
            unique_viewers: 99_995,
            expected_reach: Some(100_000),
            ..usd(100)
        };
        let a = assess(&f);
        assert_eq!(a.reach_delivered_ratio, Some(1.0));
        assert_eq!(a.verdict, Verdict::NearlyMet);
    }

    #[test]
    fn nothing_recorded_is_no_delivery_with_no_rates() {
        let a = assess(&usd(50_000));
        assert_eq!(a.verdict, Verdict::NoDelivery);
        assert_eq!(a.reach, 0);
        assert_eq!(a.reach_basis, ReachBasis::Nothing);
        assert_eq!(a.reach_delivered_ratio, Some(0.0));
        assert_eq!(a.cpm, None);
        assert_eq!(a.cost_per_engaged_attendee, None);
        assert_eq!(a.cost_per_thousand_reach, None);
        assert_eq!(a.click_through_rate, None);
        assert_eq!(a.avg_dwell_ms, None);
        assert_eq!(a.ticket_conversion_rate, None);
        assert_eq!(a.engaged_attendees, None);
    }

    #[test]
    fn no_expected_reach_gives_no_ratio() {
        for expected in [None, Some(0)] {
            let f = Facts {
                views: 10,
                expected_reach: expected,
                ..usd(1000)
            };
            let a = assess(&f);
            assert_eq!(a.verdict, Verdict::NoExpectation);
            assert_eq!(a.reach_delivered_ratio, None);
        }
    }

    #[test]
    fn without_viewer_keys_impressions_stand_in_for_reach() {
        let f = Facts {
            views: 900,
            unkeyed_views: 900,
            clicks: 9,
            ..usd(90_000)
        };
        let a = assess(&f);
        assert_eq!(a.reach_basis, ReachBasis::Impressions);
        assert_eq!(a.reach, 900);
        assert_eq!(a.engaged_attendees, None);
        assert_eq!(a.cost_per_engaged_attendee, None);
        assert_eq!(a.impressions_per_person, None);
        assert_eq!(a.verdict, Verdict::NearlyMet);
        assert!(
            a.verdict_reason.contains("upper bound"),
            "{}",
            a.verdict_reason
        );
    }

    #[test]
    fn zero_decimal_currency_costs_in_whole_yen() {
        // ¥500,000 for 12,345 impressions: 500000 * 1000 / 12345 = 40502.2 -> 40502
        let f = Facts {
            currency: Currency::from_code("JPY").unwrap(),
            views: 12_345,
            ..usd(500_000)
        };
        let a = assess(&f);
        assert_eq!(a.cpm, Some(40_502));
        let s = summary(&f, &a);
        assert_eq!(s["currency"], "JPY");
        assert_eq!(s["currency_exponent"], 0);
        assert_eq!(s["cpm_cents"], 40_502);
    }

    #[test]
    fn views_without_a_key_count_as_people_and_reach_moves_smoothly() {
        // 900 rows by 400 identified people and 100 views without a key
        let f = Facts {
            views: 1000,
            keyed_rows: 900,
            unkeyed_views: 100,
            unique_viewers: 400,
            ..usd(100_000)
        };
        let a = assess(&f);
        assert_eq!(a.reach_basis, ReachBasis::Mixed);
        assert_eq!(a.reach, 500);
        assert_eq!(a.verdict, Verdict::UnderDelivered);
        assert!(
            a.verdict_reason.contains("100 views without a viewer key"),
            "{}",
            a.verdict_reason
        );
        assert_eq!(summary(&f, &a)["identified_reach"], 400);
        // one keyed click among 10,000 unkeyed views moves reach by one, not to one
        let unkeyed = Facts {
            views: 10_000,
            unkeyed_views: 10_000,
            ..usd(100_000)
        };
        let plus_one = Facts {
            clicks: 1,
            keyed_rows: 1,
            unique_viewers: 1,
            ..unkeyed.clone()
        };
        assert_eq!(assess(&unkeyed).reach, 10_000);
        assert_eq!(assess(&plus_one).reach, 10_001);
        assert_eq!(assess(&unkeyed).verdict, assess(&plus_one).verdict);
    }

    #[test]
    fn halves_round_up() {
        // 3 cents over 2 engaged people: 1.5 -> 2
        let f = Facts {
            views: 2,
            keyed_rows: 2,
            unique_viewers: 2,
            engaged_viewers: 2,
            ..usd(3)
        };
        assert_eq!(assess(&f).cost_per_engaged_attendee, Some(2));
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }

    #[test]
    fn json_round_trip_and_rejections() {
        let f = Facts {
            views: 5,
            keyed_rows: 5,
            unique_viewers: 3,
            engaged_viewers: 1,
            ..usd(700)
        };
        assert_eq!(Facts::from_json(&f.to_json()).unwrap(), f);

        let mut v = f.to_json();
        v["views"] = json!(-1);
        assert!(matches!(
            Facts::from_json(&v),
            Err(RoiError::Negative("views", -1))
        ));
        let mut v = f.to_json();
        v["tickets"] = json!(1.5);
        assert_eq!(Facts::from_json(&v), Err(RoiError::NotAnInteger("tickets")));
        let mut v = f.to_json();
        v.as_object_mut().unwrap().remove("clicks");
        assert_eq!(Facts::from_json(&v), Err(RoiError::NotAnInteger("clicks")));
        let mut v = f.to_json();
        v["currency"] = json!("XYZ");
        assert!(matches!(Facts::from_json(&v), Err(RoiError::Currency(_))));
        let mut v = f.to_json();
        v["engaged_viewers"] = json!(4);
        assert!(matches!(
            Facts::from_json(&v),
            Err(RoiError::Inconsistent(_))
        ));
        for (key, value) in [("unique_viewers", 0), ("unkeyed_views", 1)] {
            let mut v = f.to_json();
            v[key] = json!(value);
            assert!(
                matches!(Facts::from_json(&v), Err(RoiError::Inconsistent(_))),
                "{key} = {value}"
            );
        }
    }

    fn facts_strategy() -> impl Strategy<Value = Facts> {
        (
            0i64..i64::MAX / 1000,
            proptest::option::of(0i64..10_000_000),
            (0i64..1_000_000, 0i64..100_000, 0i64..100_000),
            (0u32..=100, 0u32..=100, 0u32..=100, 0u32..=100),
            (0i64..i64::MAX / 4, 0u32..=100, 0u32..=100),
            (0i64..1_000_000, 0i64..1_000_000),
        )
            .prop_map(
                |(
                    cost,
                    expected,
                    (views, clicks, engagements),
                    (k, u, e, uk),
                    (dwell, ds, cs),
                    (tv, t),
                )| {
                    let rows = views + clicks + engagements;
                    let unkeyed_views = views * uk as i64 / 100;
                    let keyed_rows = (rows - unkeyed_views) * k as i64 / 100;
                    let unique_viewers = if keyed_rows > 0 {
                        (keyed_rows * u as i64 / 100).max(1)
                    } else {
                        0
                    };
                    let completion_samples = rows * cs as i64 / 100;
                    Facts {
                        currency: Currency::USD,
                        cost,
                        expected_reach: expected,
                        event_attendees: None,
                        views,
                        clicks,
                        engagements,
                        keyed_rows,
                        unkeyed_views,
                        unique_viewers,
                        engaged_viewers: unique_viewers * e as i64 / 100,
                        dwell_ms_sum: dwell,
                        dwell_samples: rows * ds as i64 / 100,
                        completions: completion_samples / 2,
                        completion_samples,
                        ticket_views: tv,
                        tickets: t,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn figures_are_bounded_and_consistent(f in facts_strategy()) {
            prop_assert!(f.validate().is_ok());
            let a = assess(&f);
            for rate in [a.click_through_rate, a.engagement_rate, a.completion_rate].into_iter().flatten() {
                // a click-through rate may pass 1 (several clicks per view); the others may not
                prop_assert!(rate >= 0.0);
            }
            for rate in [a.engagement_rate, a.completion_rate].into_iter().flatten() {
                prop_assert!(rate <= 1.0);
            }
            prop_assert!(a.reach >= 0);
            if let Some(cpm) = a.cpm {
                // within half a minor unit of the exact figure
                let exact = f.cost as i128 * 1000;
                let v = f.views as i128;
                prop_assert!((cpm as i128 * v * 2 - exact * 2).abs() <= v);
            }
            if let (Some(e), Some(ratio)) = (f.expected_reach.filter(|&e| e > 0), a.reach_delivered_ratio) {
                prop_assert!((ratio - a.reach as f64 / e as f64).abs() <= 0.00005 + 1e-9);
            }
            let s = summary(&f, &a);
            prop_assert_eq!(s["verdict"].as_str(), Some(a.verdict.name()));
        }
    }
}
