//! The platform fee, in integer minor units only.
//!
//! The rule, in order:
//! 1. `gross × rate_bps / 10,000`, rounded half up to the currency's granularity (one minor
//!    unit; ten in three-decimal currencies, where Stripe wants amounts ending in 0);
//! 2. raised to the organization's minimum fee and lowered to its maximum, when it has them
//!    (both in the order's minor units, the minimum rounded up and the maximum down to the
//!    granularity);
//! 3. never above the gross amount.
//!
//! `net = gross − fee`. Arithmetic is exact (i128 for the product); nothing is a float.

use thiserror::Error;

use super::currency::Currency;

/// Basis points in 100%.
pub const FULL_RATE_BPS: u32 = 10_000;

/// What an organization pays: its rate and optional floor and cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    pub rate_bps: u32,
    pub min_fee: Option<i64>,
    pub max_fee: Option<i64>,
}

/// A gross amount split into the platform's fee and the organizer's net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub gross: i64,
    pub fee: i64,
    pub net: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FeeError {
    #[error("amount must be zero or more minor units, got {0}")]
    NegativeAmount(i64),
    #[error("fee rate must be between 0 and 10000 basis points, got {0}")]
    RateOutOfRange(i64),
    #[error("fee bounds must be zero or more, got {0}")]
    NegativeBound(i64),
    #[error("minimum fee {min} is above maximum fee {max}")]
    BoundsCrossed { min: i64, max: i64 },
}

impl FeePolicy {
    /// A checked policy.
    pub fn new(rate_bps: i64, min_fee: Option<i64>, max_fee: Option<i64>) -> Result<FeePolicy, FeeError> {
        if !(0..=FULL_RATE_BPS as i64).contains(&rate_bps) {
            return Err(FeeError::RateOutOfRange(rate_bps));
        }
        for b in [min_fee, max_fee].into_iter().flatten() {
            if b < 0 {
                return Err(FeeError::NegativeBound(b));
            }
        }
        if let (Some(min), Some(max)) = (min_fee, max_fee) {
            if min > max {
                return Err(FeeError::BoundsCrossed { min, max });
            }
        }
        Ok(FeePolicy {
            rate_bps: rate_bps as u32,
            min_fee,
            max_fee,
        })
    }

    /// The fee on `gross` minor units of `currency`, and what is left for the organizer.
    ///
    /// It runs once per row over whole tables, so it avoids 128-bit division: amounts up to
    /// `FAST_MAX` (4.6 × 10^14 minor units) are computed in 64 bits, and every division is by
    /// a constant (the step is 1 or 10 minor units).
    pub fn split(&self, gross: i64, currency: Currency) -> Result<Split, FeeError> {
        if gross < 0 {
            return Err(FeeError::NegativeAmount(gross));
        }
        let ten = match currency.granularity() {
            1 => false,
            10 => true,
            g => unreachable!("a currency step of {g} minor units"),
        };
        // gross × rate / 10,000 rounded half up to the step s: floor((2n + d) / 2d) with
        // n = gross × rate and d = 10,000 × s.
        let steps = if gross <= FAST_MAX {
            let n2 = 2 * gross * self.rate_bps as i64;
            if ten { (n2 + 100_000) / 200_000 } else { (n2 + 10_000) / 20_000 }
        } else {
            let n2 = 2 * gross as i128 * self.rate_bps as i128;
            (if ten { (n2 + 100_000) / 200_000 } else { (n2 + 10_000) / 20_000 }) as i64
        };
        let mut fee = steps as i128 * if ten { 10 } else { 1 };
        if let Some(min) = self.min_fee {
            // rounded up to the step (min >= 0, checked in new())
            let min = if ten { (min as u64).div_ceil(10) as i128 * 10 } else { min as i128 };
            fee = fee.max(min);
        }
        if let Some(max) = self.max_fee {
            let max = if ten { (max / 10 * 10) as i128 } else { max as i128 };
            fee = fee.min(max);
        }
        let fee = fee.min(gross as i128) as i64;
        Ok(Split {
            gross,
            fee,
            net: gross - fee,
        })
    }
}

/// The largest amount whose fee is computed in 64 bits: 2 × gross × 10,000 + 100,000 fits.
pub const FAST_MAX: i64 = (i64::MAX - 100_000) / (2 * FULL_RATE_BPS as i64);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn fee(gross: i64, bps: i64, min: Option<i64>, max: Option<i64>, code: &str) -> i64 {
        FeePolicy::new(bps, min, max).unwrap().split(gross, cur(code)).unwrap().fee
    }

    #[test]
    fn the_fee_table_across_currencies_and_rates() {
        // (gross, rate bps, currency, fee)
        let table: &[(i64, i64, &str, i64)] = &[
            (100_000, 500, "USD", 5_000),    // $1,000 at 5%
            (100_000, 250, "EUR", 2_500),    // 2.5%
            (1_999, 1_000, "USD", 200),      // 199.9 -> 200
            (1_990, 1_000, "USD", 199),      // exactly 199
            (12_345, 333, "GBP", 411),       // 411.0885 -> 411
            (500_000, 1_000, "JPY", 50_000), // zero-decimal: minor unit = 1 yen
            (999, 1_250, "JPY", 125),        // 124.875 -> 125 yen
            (1_234_560, 500, "KWD", 61_730), // three-decimal: 61,728 -> 61,730 (ends in 0)
            (100_000, 0, "USD", 0),          // no fee
            (100_000, 10_000, "USD", 100_000), // all of it
            (0, 500, "USD", 0),
            (1, 4_999, "USD", 0),            // 0.4999 -> 0
            (1, 5_000, "USD", 1),            // 0.5 -> 1
        ];
        for &(gross, bps, code, want) in table {
            assert_eq!(fee(gross, bps, None, None, code), want, "{gross} {code} at {bps} bps");
        }
    }

    #[test]
    fn half_a_minor_unit_rounds_up_and_just_below_rounds_down() {
        // 1,010 × 5% = 50.5 -> 51; 1,009 × 5% = 50.45 -> 50; 1,030 × 5% = 51.5 -> 52
        assert_eq!(fee(1_010, 500, None, None, "USD"), 51);
        assert_eq!(fee(1_009, 500, None, None, "USD"), 50);
        assert_eq!(fee(1_030, 500, None, None, "USD"), 52);
        // three decimals: the half step is 5 minor units; 4,100 × 5% = 205 -> 210; 4,090 × 5% = 204.5 -> 200
        assert_eq!(fee(4_100, 500, None, None, "BHD"), 210);
        assert_eq!(fee(4_090, 500, None, None, "BHD"), 200);
    }

    #[test]
    fn the_floor_and_the_cap() {
        assert_eq!(fee(1_000, 500, Some(300), None, "USD"), 300, "floor raises 50 to 300");
        assert_eq!(fee(10_000_000, 500, None, Some(25_000), "USD"), 25_000, "cap lowers 500,000");
        assert_eq!(fee(200, 500, Some(300), None, "USD"), 200, "never above the amount");
        assert_eq!(fee(40_000, 1_000, Some(300), Some(2_000), "USD"), 2_000);
        assert_eq!(fee(4_000, 1_000, Some(305), None, "KWD"), 400, "floor 305 rounds up to 310, below 400");
        assert_eq!(fee(1_000, 100, Some(305), None, "KWD"), 310, "floor rounded up to a multiple of 10");
        assert_eq!(fee(1_000_000, 1_000, None, Some(2_345), "KWD"), 2_340, "cap rounded down");
        assert_eq!(fee(1_000, 500, Some(0), Some(0), "USD"), 0);
    }

    #[test]
    fn bad_policies_and_amounts_are_errors() {
        assert_eq!(FeePolicy::new(-1, None, None), Err(FeeError::RateOutOfRange(-1)));
        assert_eq!(FeePolicy::new(10_001, None, None), Err(FeeError::RateOutOfRange(10_001)));
        assert_eq!(FeePolicy::new(100, Some(-5), None), Err(FeeError::NegativeBound(-5)));
        assert_eq!(FeePolicy::new(100, Some(10), Some(5)), Err(FeeError::BoundsCrossed { min: 10, max: 5 }));
        let p = FeePolicy::new(500, None, None).unwrap();
        assert_eq!(p.split(-1, cur("USD")), Err(FeeError::NegativeAmount(-1)));
    }

    #[test]
    fn the_largest_amounts_do_not_overflow() {
        let p = FeePolicy::new(10_000, None, None).unwrap();
        let s = p.split(i64::MAX, cur("USD")).unwrap();
        assert_eq!((s.fee, s.net), (i64::MAX, 0));
        let p = FeePolicy::new(9_999, None, None).unwrap();
        let s = p.split(i64::MAX, cur("USD")).unwrap();
        assert_eq!(s.fee + s.net, i64::MAX);
    }

    /// The rule written plainly in 128 bits, to check the fast path against.
    fn reference(p: &FeePolicy, gross: i64, currency: Currency) -> i64 {
        let g = currency.granularity() as i128;
        let n = gross as i128 * p.rate_bps as i128;
        let d = FULL_RATE_BPS as i128 * g;
        let mut fee = (2 * n + d) / (2 * d) * g;
        if let Some(min) = p.min_fee {
            fee = fee.max((min as i128 + g - 1) / g * g);
        }
        if let Some(max) = p.max_fee {
            fee = fee.min(max as i128 / g * g);
        }
        fee.min(gross as i128) as i64
    }

    #[test]
    fn the_64_bit_path_ends_where_the_128_bit_one_begins() {
        for code in ["USD", "KWD", "JPY"] {
            for bps in [1, 499, 500, 9_999, 10_000] {
                let p = FeePolicy::new(bps, Some(7), Some(i64::MAX - 3)).unwrap();
                for gross in [FAST_MAX - 1, FAST_MAX, FAST_MAX + 1, i64::MAX - 1, i64::MAX] {
                    assert_eq!(p.split(gross, cur(code)).unwrap().fee, reference(&p, gross, cur(code)),
                               "{gross} {code} {bps}");
                }
            }
        }
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        let all: Vec<Currency> = Currency::all().collect();
        (0..all.len()).prop_map(move |i| all[i])
    }

    proptest! {
        #[test]
        fn the_fast_rule_equals_the_plain_one(
            gross in prop_oneof![0i64..100_000_000, 0i64..=i64::MAX, (FAST_MAX - 1000)..(FAST_MAX + 1000)],
            bps in 0i64..=10_000,
            min in proptest::option::of(prop_oneof![0i64..100_000, 0i64..=i64::MAX]),
            currency in any_currency(),
        ) {
            let max = min.map(|m| m.saturating_add(gross / 3));
            let p = FeePolicy::new(bps, min, max).unwrap();
            prop_assert_eq!(p.split(gross, currency).unwrap().fee, reference(&p, gross, currency));
        }

        #[test]
        fn fee_plus_net_is_gross_and_the_fee_is_never_above_it(
            gross in 0i64..=i64::MAX,
            bps in 0i64..=10_000,
            min in proptest::option::of(0i64..1_000_000_000),
            extra in proptest::option::of(0i64..1_000_000_000),
            currency in any_currency(),
        ) {
            let max = match (min, extra) { (Some(m), Some(e)) => Some(m + e), (None, e) => e, (Some(_), None) => None };
            let s = FeePolicy::new(bps, min, max).unwrap().split(gross, currency).unwrap();
            prop_assert_eq!(s.fee + s.net, gross);
            prop_assert!(s.fee >= 0 && s.fee <= gross);
            prop_assert!(s.net >= 0);
            if let Some(max) = max { prop_assert!(s.fee <= max); }
        }

        #[test]
        fn without_bounds_the_fee_is_the_rate_rounded_to_the_currencys_step(
            gross in 0i64..=1_000_000_000_000,
            bps in 0i64..=10_000,
            currency in any_currency(),
        ) {
            let s = FeePolicy::new(bps, None, None).unwrap().split(gross, currency).unwrap();
            let g = currency.granularity() as i128;
            let exact = gross as i128 * bps as i128;             // fee × 10,000
            prop_assert_eq!(s.fee as i128 % g, 0);
            // within half a step of the exact fee, and half steps round up
            let diff = s.fee as i128 * 10_000 - exact;
            prop_assert!(diff * 2 <= g * 10_000 && diff * 2 > -(g * 10_000), "fee {} for {} at {}", s.fee, gross, bps);
        }
    }
}
