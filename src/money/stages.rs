//! Staged payouts: an order's `milestone` may release the organizer's money in stages (a
//! share on acceptance, the rest on completion, ...). Each stage is its own payout; the
//! stages always add up to exactly the order's fee and net amount.

use serde_json::Value;
use thiserror::Error;

use super::currency::Currency;
use super::fee::{Split, FULL_RATE_BPS};

/// The order status a stage waits for, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DueOn {
    Accepted,
    Live,
    Completed,
}

impl DueOn {
    pub fn parse(s: &str) -> Option<DueOn> {
        match s {
            "accepted" => Some(DueOn::Accepted),
            "live" => Some(DueOn::Live),
            "completed" => Some(DueOn::Completed),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DueOn::Accepted => "accepted",
            DueOn::Live => "live",
            DueOn::Completed => "completed",
        }
    }

    /// Whether an order in `status` has reached this stage (refunded, cancelled and pending
    /// orders reach none).
    pub fn reached_by(self, status: &str) -> bool {
        DueOn::parse(status).is_some_and(|s| s >= self)
    }
}

/// One stage of a payout plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The payout's stage name: `full` for an unstaged order, else the status it waits for.
    pub name: String,
    pub due_on: DueOn,
    pub share_bps: u32,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StageError {
    #[error("milestone must be an object with a \"stages\" array, e.g. {{\"stages\":[{{\"on\":\"accepted\",\"share_bps\":3000}},{{\"on\":\"completed\",\"share_bps\":7000}}]}}")]
    Shape,
    #[error("milestone stage {0}: \"on\" must be accepted, live or completed")]
    BadStatus(usize),
    #[error("milestone stage {0}: \"share_bps\" must be an integer from 1 to 10000")]
    BadShare(usize),
    #[error("milestone names the stage \"{0}\" twice")]
    Duplicate(String),
    #[error("milestone shares sum to {0} basis points; they must sum to 10000")]
    BadSum(u64),
}

/// The payout plan of an order: its `milestone`, or one stage released on acceptance.
pub fn plan(milestone: Option<&Value>) -> Result<Vec<Stage>, StageError> {
    let Some(m) = milestone.filter(|v| !v.is_null()) else {
        return Ok(vec![Stage {
            name: "full".into(),
            due_on: DueOn::Accepted,
            share_bps: FULL_RATE_BPS,
        }]);
    };
    let stages = m
        .get("stages")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or(StageError::Shape)?;
    let mut out: Vec<Stage> = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let due_on = s
            .get("on")
            .and_then(Value::as_str)
            .and_then(DueOn::parse)
            .ok_or(StageError::BadStatus(i + 1))?;
        let share = s
            .get("share_bps")
            .and_then(Value::as_u64)
            .filter(|x| (1..=FULL_RATE_BPS as u64).contains(x))
            .ok_or(StageError::BadShare(i + 1))?;
        if out.iter().any(|o| o.due_on == due_on) {
            return Err(StageError::Duplicate(due_on.name().into()));
        }
        out.push(Stage {
            name: due_on.name().into(),
            due_on,
            share_bps: share as u32,
        });
    }
    let sum: u64 = out.iter().map(|s| s.share_bps as u64).sum();
    if sum != FULL_RATE_BPS as u64 {
        return Err(StageError::BadSum(sum));
    }
    out.sort_by_key(|s| s.due_on);
    Ok(out)
}

/// What one stage pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageAmounts {
    pub stage: Stage,
    pub gross: i64,
    pub fee: i64,
    pub net: i64,
}

/// `total` split by shares in steps of `step`: every part but the last is its share rounded
/// down to a step, the last takes what is left.
fn apportion(total: i64, shares: &[u32], step: i64) -> Vec<i64> {
    let units = total / step;
    let mut parts: Vec<i64> = shares
        .iter()
        .map(|&s| (units as i128 * s as i128 / FULL_RATE_BPS as i128) as i64 * step)
        .collect();
    let given: i64 = parts[..parts.len() - 1].iter().sum();
    *parts.last_mut().expect("at least one stage") = total - given;
    parts
}

/// The amounts of every stage of `plan` for an order split into fee and net. The fee and
/// the net are each apportioned (so no stage's net is negative), and each stage's gross is
/// its fee plus its net: the stages add up to the order exactly.
pub fn amounts(split: Split, plan: &[Stage], currency: Currency) -> Vec<StageAmounts> {
    let shares: Vec<u32> = plan.iter().map(|s| s.share_bps).collect();
    let step = currency.granularity();
    let fees = apportion(split.fee, &shares, step);
    let nets = apportion(split.net, &shares, step);
    plan.iter()
        .zip(fees.into_iter().zip(nets))
        .map(|(stage, (fee, net))| StageAmounts {
            stage: stage.clone(),
            gross: fee + net,
            fee,
            net,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    fn split(gross: i64, fee: i64) -> Split {
        Split { gross, fee, net: gross - fee }
    }

    #[test]
    fn an_unstaged_order_is_one_stage_due_on_acceptance() {
        let p = plan(None).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].name.as_str(), p[0].due_on, p[0].share_bps), ("full", DueOn::Accepted, 10_000));
        assert_eq!(plan(Some(&Value::Null)).unwrap(), p);
    }

    #[test]
    fn a_milestone_plan_is_parsed_ordered_and_checked() {
        let p = plan(Some(&json!({"stages": [{"on": "completed", "share_bps": 7000}, {"on": "accepted", "share_bps": 3000}]})))
            .unwrap();
        assert_eq!(p.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["accepted", "completed"]);
        for (bad, err) in [
            (json!({}), StageError::Shape),
            (json!({"stages": []}), StageError::Shape),
            (json!({"stages": [{"on": "paid", "share_bps": 10000}]}), StageError::BadStatus(1)),
            (json!({"stages": [{"on": "live", "share_bps": 0}]}), StageError::BadShare(1)),
            (json!({"stages": [{"on": "live", "share_bps": 1.5}]}), StageError::BadShare(1)),
            (json!({"stages": [{"on": "live", "share_bps": 5000}, {"on": "live", "share_bps": 5000}]}), StageError::Duplicate("live".into())),
            (json!({"stages": [{"on": "live", "share_bps": 5000}, {"on": "completed", "share_bps": 4000}]}), StageError::BadSum(9000)),
        ] {
            assert_eq!(plan(Some(&bad)), Err(err), "{bad}");
        }
    }

    #[test]
    fn stages_are_due_in_lifecycle_order() {
        assert!(DueOn::Accepted.reached_by("accepted"));
        assert!(DueOn::Accepted.reached_by("completed"));
        assert!(!DueOn::Completed.reached_by("live"));
        for s in ["pending", "refunded", "cancelled", "nonsense"] {
            assert!(!DueOn::Accepted.reached_by(s), "{s}");
        }
    }

    #[test]
    fn a_thirty_seventy_split_adds_up_exactly() {
        let p = plan(Some(&json!({"stages": [{"on": "accepted", "share_bps": 3000}, {"on": "completed", "share_bps": 7000}]})))
            .unwrap();
        let a = amounts(split(100_001, 5_000), &p, usd());
        assert_eq!((a[0].gross, a[0].fee, a[0].net), (30_000, 1_500, 28_500));
        assert_eq!((a[1].gross, a[1].fee, a[1].net), (70_001, 3_500, 66_501));
        // the case a naive split of gross and fee gets wrong: a tiny net over three stages
        let p3 = plan(Some(&json!({"stages": [{"on": "accepted", "share_bps": 3333}, {"on": "live", "share_bps": 3333},
                                              {"on": "completed", "share_bps": 3334}]}))).unwrap();
        let a = amounts(split(10, 9), &p3, usd());
        assert!(a.iter().all(|s| s.net >= 0 && s.fee >= 0));
        assert_eq!(a.iter().map(|s| s.net).sum::<i64>(), 1);
        assert_eq!(a.iter().map(|s| s.gross).sum::<i64>(), 10);
    }

    #[test]
    fn three_decimal_stages_move_in_steps_of_ten() {
        let kwd = Currency::from_code("KWD").unwrap();
        let p = plan(Some(&json!({"stages": [{"on": "accepted", "share_bps": 3333}, {"on": "completed", "share_bps": 6667}]})))
            .unwrap();
        let a = amounts(split(1_000_000, 50_000), &p, kwd);
        assert!(a.iter().all(|s| s.net % 10 == 0 && s.fee % 10 == 0), "{a:?}");
        assert_eq!(a.iter().map(|s| s.gross).sum::<i64>(), 1_000_000);
    }

    proptest! {
        #[test]
        fn stages_always_sum_to_the_order_and_are_never_negative(
            gross in 0i64..10_000_000_000_000,
            fee_share in 0u32..=10_000,
            cut1 in 1u32..9_998, cut2 in 1u32..9_998,
            three in any::<bool>(),
        ) {
            let fee = (gross as i128 * fee_share as i128 / 10_000) as i64;
            let (a, b) = (cut1.min(cut2), cut1.max(cut2).max(cut1.min(cut2) + 1));
            let stages = if three {
                json!({"stages": [{"on": "accepted", "share_bps": a}, {"on": "live", "share_bps": b - a},
                                  {"on": "completed", "share_bps": 10_000 - b}]})
            } else {
                json!({"stages": [{"on": "accepted", "share_bps": a}, {"on": "completed", "share_bps": 10_000 - a}]})
            };
            let p = plan(Some(&stages)).unwrap();
            let parts = amounts(split(gross, fee), &p, usd());
            prop_assert_eq!(parts.iter().map(|s| s.gross).sum::<i64>(), gross);
            prop_assert_eq!(parts.iter().map(|s| s.fee).sum::<i64>(), fee);
            prop_assert_eq!(parts.iter().map(|s| s.net).sum::<i64>(), gross - fee);
            for s in &parts {
                prop_assert!(s.net >= 0 && s.fee >= 0 && s.gross == s.fee + s.net);
            }
        }
    }
}
