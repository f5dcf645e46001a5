//! Client configuration and its validation.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ureq::http::Uri;

use crate::Secret;

/// Errors from building a [`Secret`] or a [`crate::Client`].
///
/// No variant ever carries the API key, nor the raw base URL (which could hold
/// user-info credentials); only the parts that are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("invalid Stripe API key: {0}")]
    InvalidSecretKey(&'static str),
    #[error("invalid base URL: {0}")]
    InvalidBaseUrl(String),
    #[error("refusing plain http to non-loopback host {host:?}: the API key would travel in clear text (use https)")]
    InsecureScheme { host: String },
    #[error("invalid Stripe-Version {0:?}: expected something like 2024-06-20 or 2024-09-30.acacia")]
    InvalidStripeVersion(String),
    #[error("invalid timeout: {0}")]
    InvalidTimeout(&'static str),
}

/// What [`crate::Client::new`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://api.stripe.com` in production. Plain `http` is accepted only for
    /// a loopback host (127.0.0.0/8, ::1, localhost). A path prefix is kept:
    /// `https://proxy.example/stripe` sends to `/stripe/v1/transfers`.
    pub base_url: String,
    pub secret_key: Secret,
    /// Deadline for the whole request: connect, send, response headers and body.
    pub timeout: Duration,
    /// Deadline for DNS + TCP connect (+ TLS handshake). Must not exceed `timeout`.
    pub connect_timeout: Duration,
    /// Sent as `Stripe-Version` when set.
    pub stripe_version: Option<String>,
}

impl Config {
    /// Production defaults: `https://api.stripe.com`, 30 s overall, 10 s connect.
    pub fn new(secret_key: Secret) -> Config {
        Config {
            base_url: "https://api.stripe.com".to_string(),
            secret_key,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            stripe_version: None,
        }
    }
}

/// A validated base URL: `scheme://authority[/prefix]` without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl(pub(crate) String);

pub(crate) fn validate_base_url(raw: &str, secret: &Secret) -> Result<BaseUrl, ConfigError> {
    let raw = raw.trim();
    if raw.contains(secret.expose()) {
        return Err(ConfigError::InvalidBaseUrl("it contains the API key".into()));
    }
    if raw.is_empty() {
        return Err(ConfigError::InvalidBaseUrl("it is empty".into()));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ConfigError::InvalidBaseUrl("it contains whitespace or control characters".into()));
    }
    if raw.contains('#') {
        return Err(ConfigError::InvalidBaseUrl("it must not have a #fragment".into()));
    }
    let uri: Uri = raw
        .parse()
        .map_err(|e: ureq::http::uri::InvalidUri| ConfigError::InvalidBaseUrl(format!("it does not parse ({e})")))?;
    let scheme = match uri.scheme_str() {
        Some(s) => s.to_ascii_lowercase(),
        None => return Err(ConfigError::InvalidBaseUrl("it has no scheme (expected https://...)".into())),
    };
    let authority = match uri.authority() {
        Some(a) => a,
        None => return Err(ConfigError::InvalidBaseUrl("it has no host".into())),
    };
    if authority.as_str().contains('@') {
        return Err(ConfigError::InvalidBaseUrl("it must not contain user-info credentials".into()));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(ConfigError::InvalidBaseUrl("it has no host".into()));
    }
    if uri.query().is_some() {
        return Err(ConfigError::InvalidBaseUrl("it must not have a ?query".into()));
    }
    match scheme.as_str() {
        "https" => {}
        "http" => {
            if !is_loopback_host(host) {
                return Err(ConfigError::InsecureScheme { host: host.to_string() });
            }
        }
        other => {
            return Err(ConfigError::InvalidBaseUrl(format!("unsupported scheme {other:?} (use https)")));
        }
    }
    let path = uri.path().trim_end_matches('/');
    let port = authority.port().map(|p| format!(":{}", p.as_str())).unwrap_or_default();
    Ok(BaseUrl(format!("{scheme}://{host}{port}{path}")))
}

/// 127.0.0.0/8, ::1 and `localhost`. Nothing that needs a resolver other than
/// the literal name `localhost`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().map(|a| a.is_loopback()).unwrap_or(false);
    }
    host.parse::<Ipv4Addr>().map(|a| a.is_loopback()).unwrap_or(false)
}

pub(crate) fn validate_stripe_version(v: &str) -> Result<(), ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok { Ok(()) } else { Err(ConfigError::InvalidStripeVersion(v.chars().take(64).collect())) }
}

pub(crate) fn validate_timeouts(timeout: Duration, connect: Duration) -> Result<(), ConfigError> {
    if timeout.is_zero() {
        return Err(ConfigError::InvalidTimeout("timeout must be greater than zero"));
    }
    if connect.is_zero() {
        return Err(ConfigError::InvalidTimeout("connect_timeout must be greater than zero"));
    }
    if connect > timeout {
        return Err(ConfigError::InvalidTimeout(
            "connect_timeout must not exceed timeout (a slow connect would be reported as Unknown)",
        ));
    }
    if timeout > Duration::from_secs(3600) {
        return Err(ConfigError::InvalidTimeout("timeout must not exceed one hour"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::new("sk_test_abcdefgh12345678").unwrap()
    }

    fn ok(u: &str) -> String {
        validate_base_url(u, &key()).unwrap_or_else(|e| panic!("{u}: {e}")).0
    }

    #[test]
    fn https_anywhere_and_prefixes_kept() {
        assert_eq!(ok("https://api.stripe.com"), "https://api.stripe.com");
        assert_eq!(ok("https://api.stripe.com/"), "https://api.stripe.com");
        assert_eq!(ok("HTTPS://api.stripe.com:8443/proxy/stripe/"), "https://api.stripe.com:8443/proxy/stripe");
        assert_eq!(ok("https://10.1.2.3/x"), "https://10.1.2.3/x");
    }

    #[test]
    fn http_only_to_loopback() {
        assert_eq!(ok("http://127.0.0.1:12111"), "http://127.0.0.1:12111");
        assert_eq!(ok("http://127.1.2.3:1/"), "http://127.1.2.3:1");
        assert_eq!(ok("http://[::1]:8080/pre"), "http://[::1]:8080/pre");
        assert_eq!(ok("http://localhost:9/"), "http://localhost:9");
        assert_eq!(ok("http://LocalHost"), "http://LocalHost");
        for u in [
            "http://api.stripe.com",
            "http://10.0.0.1:80",
            "http://192.168.1.1",
            "http://0.0.0.0:1",
            "http://[::]:1",
            "http://[::ffff:10.0.0.1]:1",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://2130706433",
            "http://localhost.:1",
        ] {
            match validate_base_url(u, &key()) {
                Err(ConfigError::InsecureScheme { .. }) => {}
                other => panic!("{u}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_urls() {
        for u in [
            "",
            "   ",
            "api.stripe.com",
            "/v1",
            "ftp://api.stripe.com",
            "file:///etc/passwd",
            "https://",
            "https://user:pw@api.stripe.com",
            "http://sk@127.0.0.1:1",
            "https://api.stripe.com/?x=1",
            "https://api.stripe.com/#frag",
            "https://api stripe.com",
            "https://api.stri\npe.com/",
        ] {
            match validate_base_url(u, &key()) {
                Err(ConfigError::InvalidBaseUrl(m)) => assert!(!m.contains("pw"), "{m}"),
                Err(ConfigError::InsecureScheme { .. }) if u.starts_with("http://") => {}
                other => panic!("{u:?}: {other:?}"),
            }
        }
        let k = key();
        let err = validate_base_url("https://x/sk_test_abcdefgh12345678", &k).unwrap_err();
        assert!(!err.to_string().contains("abcdefgh12345678"));
    }

    #[test]
    fn stripe_version_and_timeouts() {
        assert!(validate_stripe_version("2024-06-20").is_ok());
        assert!(validate_stripe_version("2024-09-30.acacia").is_ok());
        assert!(validate_stripe_version("").is_err());
        assert!(validate_stripe_version("2024\r\nX-Evil: 1").is_err());
        let s = Duration::from_secs(1);
        assert!(validate_timeouts(s, s).is_ok());
        assert!(validate_timeouts(Duration::ZERO, s).is_err());
        assert!(validate_timeouts(s, Duration::ZERO).is_err());
        assert!(validate_timeouts(s, 2 * s).is_err());
        assert!(validate_timeouts(Duration::from_secs(4000), s).is_err());
    }
}
