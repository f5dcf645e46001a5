//! ISO 4217 currencies the platform settles in, with the number of decimals of their minor
//! unit as Stripe counts them: zero-decimal currencies (an amount of 500 JPY is sent as 500),
//! three-decimal ones (500 KWD is 500000, and Stripe wants the last digit 0), two decimals
//! otherwise.

use thiserror::Error;

/// One settlement currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// Upper-case ISO 4217 code.
    pub code: &'static str,
    /// Decimals of the minor unit (0, 2 or 3).
    pub exponent: u8,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CurrencyError {
    #[error("unknown currency {0:?}: use an upper-case ISO 4217 code Stripe settles in, such as USD, EUR or JPY")]
    Unknown(String),
}

/// Stripe's zero-decimal currencies.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Every other currency Stripe presents in, all with two decimals.
const TWO_DECIMAL: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BRL", "BSD", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CNY",
    "COP", "CRC", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "ISK",
    "JMD", "KES", "KGS", "KHR", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL",
    "MKD", "MMK", "MNT", "MOP", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB",
    "SAR", "SBD", "SCR", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "STD", "SZL", "THB", "TJS",
    "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "UYU", "UZS", "WST", "XCD", "YER", "ZAR",
    "ZMW",
];

/// Packs a three-letter code into an integer, so lookups compare one word.
fn key(code: &[u8]) -> Option<u32> {
    match code {
        [a, b, c] => Some(u32::from_be_bytes([0, *a, *b, *c])),
        _ => None,
    }
}

/// Every currency, sorted by packed code, built on first use.
fn index() -> &'static [(u32, Currency)] {
    static INDEX: std::sync::OnceLock<Vec<(u32, Currency)>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut v: Vec<(u32, Currency)> = Currency::all()
            .map(|c| (key(c.code.as_bytes()).expect("three letters"), c))
            .collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    })
}

impl Currency {
    /// The platform's default currency (the two-argument fee function's).
    pub const USD: Currency = Currency { code: "USD", exponent: 2 };

    /// Looks a code up (exactly: upper case, three letters).
    pub fn from_code(code: &str) -> Result<Currency, CurrencyError> {
        let unknown = || CurrencyError::Unknown(code.to_string());
        let k = key(code.as_bytes()).ok_or_else(unknown)?;
        let index = index();
        index
            .binary_search_by_key(&k, |(k, _)| *k)
            .map(|i| index[i].1)
            .map_err(|_| unknown())
    }

    /// The smallest step an amount may take when sent to Stripe, in minor units: Stripe
    /// requires amounts in three-decimal currencies to end in 0.
    pub fn granularity(&self) -> i64 {
        if self.exponent == 3 {
            10
        } else {
            1
        }
    }

    /// Minor units in one major unit (1, 100 or 1000).
    pub fn minor_per_major(&self) -> i64 {
        10i64.pow(self.exponent as u32)
    }

    /// `minor` written in major units with the currency's decimals: 123456 USD -> "1234.56".
    pub fn format(&self, minor: i64) -> String {
        let per = self.minor_per_major() as i128;
        let m = minor as i128;
        let sign = if m < 0 { "-" } else { "" };
        let (whole, frac) = (m.abs() / per, m.abs() % per);
        if self.exponent == 0 {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{frac:0width$}", width = self.exponent as usize)
        }
    }

    /// Every known currency.
    pub fn all() -> impl Iterator<Item = Currency> {
        ZERO_DECIMAL
            .iter()
            .map(|c| Currency { code: c, exponent: 0 })
            .chain(THREE_DECIMAL.iter().map(|c| Currency { code: c, exponent: 3 }))
            .chain(TWO_DECIMAL.iter().map(|c| Currency { code: c, exponent: 2 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_stripe() {
        assert_eq!(Currency::from_code("USD").unwrap().exponent, 2);
        assert_eq!(Currency::from_code("JPY").unwrap().exponent, 0);
        assert_eq!(Currency::from_code("KRW").unwrap().exponent, 0);
        assert_eq!(Currency::from_code("KWD").unwrap().exponent, 3);
        assert_eq!(Currency::from_code("BHD").unwrap().granularity(), 10);
        assert_eq!(Currency::from_code("EUR").unwrap().granularity(), 1);
    }

    #[test]
    fn every_listed_code_is_found_and_the_usd_constant_matches() {
        for c in Currency::all() {
            assert_eq!(Currency::from_code(c.code), Ok(c));
        }
        assert_eq!(Currency::from_code("USD"), Ok(Currency::USD));
    }

    #[test]
    fn unknown_and_malformed_codes_are_refused() {
        for bad in ["usd", "US", "USDD", "XYZ", "", "EU R", "AAA", "ZZZ", "É"] {
            assert_eq!(Currency::from_code(bad), Err(CurrencyError::Unknown(bad.to_string())));
        }
    }

    #[test]
    fn the_tables_do_not_overlap_and_codes_look_like_codes() {
        let mut all: Vec<&str> = Currency::all().map(|c| c.code).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a code in two tables");
        assert!(all.iter().all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn amounts_format_with_the_currencys_decimals() {
        assert_eq!(Currency::from_code("USD").unwrap().format(123456), "1234.56");
        assert_eq!(Currency::from_code("USD").unwrap().format(5), "0.05");
        assert_eq!(Currency::from_code("JPY").unwrap().format(500), "500");
        assert_eq!(Currency::from_code("KWD").unwrap().format(1234567), "1234.567");
        assert_eq!(Currency::from_code("EUR").unwrap().format(-250), "-2.50");
        assert_eq!(Currency::from_code("USD").unwrap().format(i64::MIN), "-92233720368547758.08");
    }
}
