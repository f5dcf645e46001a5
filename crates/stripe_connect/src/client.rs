//! The HTTP client: requests, and the mapping of every response or transport
//! error onto an [`Outcome`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::time::Duration;

use serde::Deserialize;
use ureq::Agent;
use zeroize::Zeroizing;

use crate::config::{validate_base_url, validate_stripe_version, validate_timeouts};
use crate::form::{Form, encode_component};
use crate::secret::sanitize;
use crate::{Config, ConfigError, Outcome, Reversal, ReversalRequest, Secret, Transfer, TransferRequest};

/// Sent as `User-Agent` on every request.
pub const USER_AGENT: &str = "sponsorship-pg/0.1";

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Responses larger than this are not read (Stripe's are a few KiB).
const MAX_BODY: u64 = 1 << 20;
/// Longest piece of server text copied into a reason.
const MAX_TEXT: usize = 500;
/// Longest idempotency key Stripe accepts.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// `list_transfers_by_group` follows `has_more` at most this many pages.
const MAX_LIST_PAGES: usize = 100;
/// Idle keep-alive connections kept by the pool (total / per host).
const POOL_IDLE: usize = 64;
const POOL_IDLE_PER_HOST: usize = 32;

/// A blocking Stripe client. `Send + Sync`: share one (e.g. in an `Arc` or a
/// `static`) between worker threads; connections are pooled and kept alive.
pub struct Client {
    agent: Agent,
    base: String,
    secret: Secret,
    auth: Zeroizing<String>,
    stripe_version: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base)
            .field("secret_key", &self.secret)
            .field("stripe_version", &self.stripe_version)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// What came back over the wire, before interpretation.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub should_retry: Option<bool>,
    pub request_id: Option<String>,
    pub body: Result<String, String>,
}

enum Method {
    Get,
    Post,
}

impl Client {
    /// Validate the configuration and build the connection pool. Does not
    /// touch the network.
    pub fn new(config: Config) -> Result<Client, ConfigError> {
        let Config { base_url, secret_key, timeout, connect_timeout, stripe_version } = config;
        let base = validate_base_url(&base_url, &secret_key)?;
        validate_timeouts(timeout, connect_timeout)?;
        if let Some(v) = &stripe_version {
            validate_stripe_version(v)?;
        }
        let agent: Agent = Agent::config_builder()
            // statuses are data for us, not errors
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(connect_timeout))
            // never follow a redirect: a POST must not be re-sent elsewhere
            .max_redirects(0)
            // never use HTTP(S)_PROXY / ALL_PROXY from the environment: a
            // plain-http proxy would see the key for loopback URLs
            .proxy(None)
            .user_agent(USER_AGENT)
            .accept("application/json")
            .max_idle_connections(POOL_IDLE)
            .max_idle_connections_per_host(POOL_IDLE_PER_HOST)
            .build()
            .into();
        let auth = Zeroizing::new(format!("Bearer {}", secret_key.expose()));
        Ok(Client { agent, base: base.0, secret: secret_key, auth, stripe_version, timeout, connect_timeout })
    }

    /// The validated base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /v1/transfers`.
    pub fn create_transfer(&self, req: &TransferRequest, idempotency_key: &str) -> Outcome<Transfer> {
        let out = match validate_idempotency_key(idempotency_key).and_then(|()| transfer_form(req)) {
            Err(e) => local_fail(&e),
            Ok(form) => self.call(Method::Post, "/v1/transfers", None, Some((&form, idempotency_key)), parse_transfer),
        };
        self.finish(out)
    }

    /// `POST /v1/transfers/{id}/reversals`.
    pub fn create_reversal(&self, transfer_id: &str, req: &ReversalRequest, idempotency_key: &str) -> Outcome<Reversal> {
        let checked = validate_transfer_id(transfer_id)
            .and_then(|()| validate_idempotency_key(idempotency_key))
            .and_then(|()| reversal_form(req));
        let out = match checked {
            Err(e) => local_fail(&e),
            Ok(form) => {
                let path = format!("/v1/transfers/{transfer_id}/reversals");
                self.call(Method::Post, &path, None, Some((&form, idempotency_key)), |body| {
                    let r = parse_reversal(body)?;
                    if r.transfer != transfer_id {
                        return Err(format!("the reversal {} belongs to another transfer", r.id));
                    }
                    Ok(r)
                })
            }
        };
        self.finish(out)
    }

    /// `GET /v1/transfers/{id}`.
    pub fn retrieve_transfer(&self, id: &str) -> Outcome<Transfer> {
        let out = match validate_transfer_id(id) {
            Err(e) => local_fail(&e),
            Ok(()) => self.call(Method::Get, &format!("/v1/transfers/{id}"), None, None, parse_transfer),
        };
        self.finish(out)
    }

    /// Every transfer of `transfer_group`, newest first, for reconciliation.
    ///
    /// `limit` (1..=100) is the page size of `GET /v1/transfers?transfer_group=..&limit=..`;
    /// `has_more` is followed with `starting_after` so that the list is
    /// complete (an incomplete list could make a reconciler think a transfer
    /// does not exist). More than 100 pages gives `Unknown`.
    pub fn list_transfers_by_group(&self, group: &str, limit: u32) -> Outcome<Vec<Transfer>> {
        let out = self.list_inner(group, limit);
        self.finish(out)
    }

    fn list_inner(&self, group: &str, limit: u32) -> Outcome<Vec<Transfer>> {
        if group.is_empty() || group.len() > 255 {
            return local_fail("transfer_group must be 1 to 255 bytes");
        }
        if !(1..=100).contains(&limit) {
            return local_fail("limit must be between 1 and 100");
        }
        let mut all: Vec<Transfer> = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = format!("transfer_group={}&limit={limit}", encode_component(group));
            if let Some(a) = &after {
                query.push_str("&starting_after=");
                query.push_str(&encode_component(a));
            }
            let page = self.call(Method::Get, "/v1/transfers", Some(&query), None, parse_list);
            let (data, has_more) = match page {
                Outcome::Done(p) => p,
                other => return other.map(|_| Vec::new()),
            };
            if let Some(t) = data.iter().find(|t| t.transfer_group.as_deref() != Some(group)) {
                return Outcome::Unknown { reason: format!("the list for group {group:?} returned transfer {} of another group", t.id) };
            }
            let last = data.last().map(|t| t.id.clone());
            all.extend(data);
            match (has_more, last) {
                (false, _) => return Outcome::Done(all),
                (true, Some(last)) => after = Some(last),
                (true, None) => return Outcome::Unknown { reason: "the list said has_more but returned no data".into() },
            }
        }
        Outcome::Unknown { reason: format!("more than {MAX_LIST_PAGES} pages of transfers in group {group:?}") }
    }

    fn call<T>(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        post: Option<(&Form, &str)>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Outcome<T> {
        match self.exchange(method, path, query, post) {
            Ok(raw) => classify(&raw, &self.secret, parse),
            Err(e) => classify_error(&e, &self.secret),
        }
    }

    fn exchange(&self, method: Method, path: &str, query: Option<&str>, post: Option<(&Form, &str)>) -> Result<Raw, ureq::Error> {
        let mut url = format!("{}{path}", self.base);
        if let Some(q) = query {
            url.push('?');
            url.push_str(q);
        }
        let response = match method {
            Method::Get => {
                let mut rb = self.agent.get(&url).header("Authorization", self.auth.as_str());
                if let Some(v) = &self.stripe_version {
                    rb = rb.header("Stripe-Version", v.as_str());
                }
                rb.call()?
            }
            Method::Post => {
                let mut rb = self.agent.post(&url).header("Authorization", self.auth.as_str());
                if let Some(v) = &self.stripe_version {
                    rb = rb.header("Stripe-Version", v.as_str());
                }
                let (body, key) = match post {
                    Some((form, key)) => (form.encode(), Some(key)),
                    None => (String::new(), None),
                };
                if let Some(k) = key {
                    rb = rb.header("Idempotency-Key", k);
                }
                rb.content_type(FORM_CONTENT_TYPE).send(body.as_bytes())?
            }
        };
        let (parts, mut body) = response.into_parts();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let retry_after = header("retry-after").and_then(parse_retry_after);
        let should_retry = header("stripe-should-retry").and_then(|v| match v.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        });
        let request_id = header("request-id").map(|v| v.chars().take(64).collect());
        let body = body.with_config().limit(MAX_BODY).read_to_string().map_err(|e| e.to_string());
        Ok(Raw { status: parts.status.as_u16(), retry_after, should_retry, request_id, body })
    }

    /// Last line of defence: scrub every string of the outcome.
    fn finish<T>(&self, o: Outcome<T>) -> Outcome<T> {
        scrub_outcome(o, &self.secret)
    }
}

pub(crate) fn scrub_outcome<T>(o: Outcome<T>, secret: &Secret) -> Outcome<T> {
    match o {
        Outcome::Done(t) => Outcome::Done(t),
        Outcome::Retry { reason, status, retry_after } => Outcome::Retry { reason: secret.scrub(&reason), status, retry_after },
        Outcome::Fail { reason, status, code } => {
            Outcome::Fail { reason: secret.scrub(&reason), status, code: code.map(|c| secret.scrub(&c)) }
        }
        Outcome::Unknown { reason } => Outcome::Unknown { reason: secret.scrub(&reason) },
    }
}

// ---------------------------------------------------------------------------
// Interpretation (pure; unit-tested below without a server)
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    param: Option<String>,
    message: Option<String>,
}

/// Map a received response onto an outcome.
pub(crate) fn classify<T>(raw: &Raw, secret: &Secret, parse: impl FnOnce(&str) -> Result<T, String>) -> Outcome<T> {
    let s = raw.status;
    let rid = raw.request_id.as_deref().map(|r| format!(" [{}]", sanitize(secret, r, 64))).unwrap_or_default();
    if (200..300).contains(&s) {
        return match &raw.body {
            Ok(body) => match parse(body) {
                Ok(t) => Outcome::Done(t),
                Err(e) => Outcome::Unknown {
                    reason: format!(
                        "HTTP {s} but the body is not the expected object ({}){rid}; Stripe may have carried out the request: retry with the same idempotency key",
                        sanitize(secret, &e, MAX_TEXT)
                    ),
                },
            },
            Err(e) => Outcome::Unknown {
                reason: format!(
                    "HTTP {s} but the body could not be read ({}){rid}; Stripe may have carried out the request: retry with the same idempotency key",
                    sanitize(secret, e, MAX_TEXT)
                ),
            },
        };
    }
    let (mut reason, code) = describe_error(raw, secret);
    reason.push_str(&rid);
    if !(400..600).contains(&s) {
        return Outcome::Unknown { reason: format!("unexpected {reason}") };
    }
    let retry = raw.should_retry.unwrap_or(s == 409 || s == 429 || s >= 500);
    if retry {
        Outcome::Retry { reason, status: Some(s), retry_after: raw.retry_after }
    } else {
        Outcome::Fail { reason, status: s, code }
    }
}

/// `HTTP 400 invalid_request_error parameter_missing (param amount): Missing required param: amount.`
fn describe_error(raw: &Raw, secret: &Secret) -> (String, Option<String>) {
    let s = raw.status;
    let clean = |t: &str| sanitize(secret, t, MAX_TEXT);
    let parsed = raw.body.as_ref().ok().and_then(|b| serde_json::from_str::<ErrorEnvelope>(b).ok());
    match parsed {
        Some(ErrorEnvelope { error: e }) => {
            let mut r = format!("HTTP {s}");
            if let Some(k) = &e.kind {
                r.push(' ');
                r.push_str(&clean(k));
            }
            if let Some(c) = &e.code {
                r.push(' ');
                r.push_str(&clean(c));
            }
            if let Some(d) = &e.decline_code {
                r.push_str(&format!(" (decline {})", clean(d)));
            }
            if let Some(p) = &e.param {
                r.push_str(&format!(" (param {})", clean(p)));
            }
            if let Some(m) = &e.message {
                r.push_str(": ");
                r.push_str(&clean(m));
            }
            let code = e.code.as_deref().or(e.kind.as_deref()).map(|c| sanitize(secret, c, 100));
            (r, code)
        }
        None => {
            let detail = match &raw.body {
                Ok(b) if b.trim().is_empty() => "empty body".to_string(),
                Ok(b) => format!("non-Stripe body: {}", sanitize(secret, b.trim(), 200)),
                Err(e) => format!("body unreadable: {}", clean(e)),
            };
            (format!("HTTP {s} ({detail})"), None)
        }
    }
}

/// Map a transport error onto an outcome: `Retry` only when the request
/// cannot have reached the server, `Unknown` whenever it may have.
pub(crate) fn classify_error<T>(e: &ureq::Error, secret: &Secret) -> Outcome<T> {
    use ureq::Error as E;
    use ureq::Timeout as Tm;
    let text = sanitize(secret, &e.to_string(), MAX_TEXT);
    let not_sent = |what: &str| Outcome::Retry {
        reason: format!("{what} ({text}); the request was not sent"),
        status: None,
        retry_after: None,
    };
    match e {
        E::HostNotFound => not_sent("DNS lookup failed"),
        E::Timeout(Tm::Resolve) => not_sent("DNS lookup timed out"),
        E::Timeout(Tm::Connect) => not_sent("connect timed out"),
        // ECONNREFUSED / EADDRNOTAVAIL only come from connect(2)
        E::Io(io) if matches!(io.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable) => {
            not_sent("connection refused")
        }
        E::ConnectionFailed => not_sent("no connection could be made"),
        // built locally before anything was sent
        E::BadUri(_) | E::Http(_) | E::RequireHttpsOnly(_) | E::InvalidProxyUrl => local_fail(&text),
        E::Timeout(t) => Outcome::Unknown {
            reason: format!(
                "timed out ({t:?}) after the request may have reached Stripe ({text}); retry with the same idempotency key"
            ),
        },
        _ => Outcome::Unknown {
            reason: format!(
                "network error after the request may have reached Stripe ({text}); retry with the same idempotency key"
            ),
        },
    }
}

fn local_fail<T>(msg: &str) -> Outcome<T> {
    Outcome::Fail { reason: format!("not sent: {msg}"), status: 0, code: Some("client_validation".into()) }
}

/// `Retry-After: <seconds>` (an HTTP date is ignored; Stripe sends seconds).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>().ok().filter(|f| f.is_finite() && *f >= 0.0).and_then(|f| Duration::try_from_secs_f64(f).ok())
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

pub(crate) fn null_as_empty_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

fn parse_transfer(body: &str) -> Result<Transfer, String> {
    let t: Transfer = serde_json::from_str(body).map_err(|e| e.to_string())?;
    check_transfer(&t)?;
    Ok(t)
}

fn check_transfer(t: &Transfer) -> Result<(), String> {
    if !is_transfer_id(&t.id) {
        return Err("the id is not a transfer id".into());
    }
    Ok(())
}

fn parse_reversal(body: &str) -> Result<Reversal, String> {
    let r: Reversal = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if !r.id.starts_with("trr_") {
        return Err("the id is not a transfer reversal id".into());
    }
    Ok(r)
}

#[derive(Deserialize)]
struct ListPage {
    data: Vec<Transfer>,
    #[serde(default)]
    has_more: bool,
}

fn parse_list(body: &str) -> Result<(Vec<Transfer>, bool), String> {
    let p: ListPage = serde_json::from_str(body).map_err(|e| e.to_string())?;
    for t in &p.data {
        check_transfer(t)?;
    }
    Ok((p.data, p.has_more))
}

// ---------------------------------------------------------------------------
// Input validation and form building
// ---------------------------------------------------------------------------

fn is_transfer_id(id: &str) -> bool {
    id.len() > 3
        && id.len() <= 255
        && id.starts_with("tr_")
        && id[3..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn validate_transfer_id(id: &str) -> Result<(), String> {
    if is_transfer_id(id) { Ok(()) } else { Err("the transfer id must match ^tr_[A-Za-z0-9_]+$".into()) }
}

fn validate_idempotency_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
        return Err(format!("the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"));
    }
    if !k.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the idempotency key must be printable ASCII without spaces".into());
    }
    Ok(())
}

fn push_metadata(form: &mut Form, metadata: &[(String, String)]) -> Result<(), String> {
    for (k, v) in metadata {
        if k.is_empty() || k.contains(['[', ']']) {
            return Err("metadata keys must be non-empty and must not contain [ or ]".into());
        }
        form.push_nested("metadata", k, v);
    }
    Ok(())
}

fn transfer_form(req: &TransferRequest) -> Result<Form, String> {
    if req.amount < 1 {
        return Err("amount must be at least 1 (minor units)".into());
    }
    if req.currency.len() != 3 || !req.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err("currency must be a three-letter ISO 4217 code".into());
    }
    if req.destination.is_empty() {
        return Err("destination must be a connected account id".into());
    }
    let mut form = Form::new();
    form.push("amount", &req.amount.to_string())
        .push("currency", &req.currency.to_ascii_lowercase())
        .push("destination", &req.destination);
    if let Some(g) = req.transfer_group.as_deref().filter(|g| !g.is_empty()) {
        form.push("transfer_group", g);
    }
    if let Some(d) = req.description.as_deref().filter(|d| !d.is_empty()) {
        form.push("description", d);
    }
    push_metadata(&mut form, &req.metadata)?;
    Ok(form)
}

fn reversal_form(req: &ReversalRequest) -> Result<Form, String> {
    let mut form = Form::new();
    if let Some(a) = req.amount {
        if a < 1 {
            return Err("reversal amount must be at least 1 (minor units)".into());
        }
        form.push("amount", &a.to_string());
    }
    push_metadata(&mut form, &req.metadata)?;
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_test_0123456789abcdefXYZW";

    fn secret() -> Secret {
        Secret::new(KEY).unwrap()
    }

    fn raw(status: u16, body: &str) -> Raw {
        Raw { status, retry_after: None, should_retry: None, request_id: Some("req_123".into()), body: Ok(body.into()) }
    }

    fn err_body(kind: &str, code: Option<&str>, msg: &str) -> String {
        let mut e = serde_json::json!({"type": kind, "message": msg});
        if let Some(c) = code {
            e["code"] = c.into();
        }
        serde_json::json!({ "error": e }).to_string()
    }

    const TRANSFER: &str = r#"{"id":"tr_1","object":"transfer","amount":100,"currency":"usd","destination":"acct_1",
        "transfer_group":null,"amount_reversed":0,"reversed":false,"metadata":{"a":"b"}}"#;

    fn kind<T>(o: &Outcome<T>) -> String {
        match o {
            Outcome::Done(_) => "done".into(),
            Outcome::Retry { status, .. } => format!("retry {status:?}"),
            Outcome::Fail { status, .. } => format!("fail {status}"),
            Outcome::Unknown { .. } => "unknown".into(),
        }
    }

    #[test]
    fn table() {
        let s = secret();
        let e = err_body("api_error", None, "boom");
        // (status, should_retry header, expected)
        let cases: &[(u16, Option<bool>, &str)] = &[
            (200, None, "done"),
            (201, Some(false), "done"),
            (400, None, "fail 400"),
            (401, None, "fail 401"),
            (402, None, "fail 402"),
            (403, None, "fail 403"),
            (404, None, "fail 404"),
            (400, Some(true), "retry Some(400)"),
            (404, Some(true), "retry Some(404)"),
            (409, None, "retry Some(409)"),
            (409, Some(true), "retry Some(409)"),
            (429, None, "retry Some(429)"),
            (500, None, "retry Some(500)"),
            (502, None, "retry Some(502)"),
            (503, Some(true), "retry Some(503)"),
            (500, Some(false), "fail 500"),
            (503, Some(false), "fail 503"),
            (302, None, "unknown"),
            (101, None, "unknown"),
        ];
        for &(status, sr, expect) in cases {
            let mut r = raw(status, if status < 300 { TRANSFER } else { &e });
            r.should_retry = sr;
            let o = classify(&r, &s, parse_transfer);
            assert_eq!(kind(&o), expect, "status {status} should_retry {sr:?}: {o:?}");
        }
    }

    #[test]
    fn done_parses_transfer() {
        let o = classify(&raw(200, TRANSFER), &secret(), parse_transfer);
        let t = o.done().unwrap();
        assert_eq!(t.id, "tr_1");
        assert_eq!(t.metadata.get("a").map(String::as_str), Some("b"));
        assert_eq!(t.transfer_group, None);
    }

    #[test]
    fn unparsable_2xx_is_unknown() {
        for body in ["", "not json", "{}", r#"{"id":"ch_1","amount":1,"currency":"usd","destination":"a"}"#, "[1,2]"] {
            let o = classify(&raw(200, body), &secret(), parse_transfer);
            assert_eq!(kind(&o), "unknown", "{body}");
        }
        let mut r = raw(200, "");
        r.body = Err("connection reset".into());
        assert_eq!(kind(&classify(&r, &secret(), parse_transfer)), "unknown");
    }

    #[test]
    fn fail_carries_code_type_message_and_request_id() {
        let body = err_body("invalid_request_error", Some("parameter_missing"), "Missing required param: amount.");
        match classify(&raw(400, &body), &secret(), parse_transfer) {
            Outcome::Fail { reason, status, code } => {
                assert_eq!(status, 400);
                assert_eq!(code.as_deref(), Some("parameter_missing"));
                assert!(reason.contains("invalid_request_error"), "{reason}");
                assert!(reason.contains("Missing required param: amount."), "{reason}");
                assert!(reason.contains("req_123"), "{reason}");
            }
            o => panic!("{o:?}"),
        }
        let body = err_body("idempotency_error", None, "Keys for idempotent requests ...");
        match classify(&raw(400, &body), &secret(), parse_transfer) {
            Outcome::Fail { code, .. } => assert_eq!(code.as_deref(), Some("idempotency_error")),
            o => panic!("{o:?}"),
        }
        match classify(&raw(502, "<html>Bad gateway</html>"), &secret(), parse_transfer) {
            Outcome::Retry { reason, .. } => assert!(reason.contains("Bad gateway"), "{reason}"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn retry_after_passed_through() {
        let mut r = raw(429, &err_body("rate_limit_error", Some("rate_limit"), "slow down"));
        r.retry_after = parse_retry_after("2");
        match classify(&r, &secret(), parse_transfer) {
            Outcome::Retry { retry_after, status, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)));
                assert_eq!(status, Some(429));
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(parse_retry_after(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("1e300"), None);
        assert_eq!(parse_retry_after("18446744073709551615"), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn server_text_is_scrubbed() {
        let body = err_body("invalid_request_error", Some(KEY), &format!("Invalid API Key provided: {KEY}\nBearer {KEY}"));
        let o = classify(&raw(401, &body), &secret(), parse_transfer);
        let shown = format!("{o:?}");
        assert!(!shown.contains(&KEY[8..]), "{shown}");
        assert!(shown.contains("sk_test_****XYZW"), "{shown}");
        let o = classify(&raw(200, &format!("garbage {KEY}")), &secret(), parse_transfer);
        assert!(!format!("{o:?}").contains(&KEY[8..]));
        let o = classify(&raw(500, &format!("<pre>{KEY}</pre>")), &secret(), parse_transfer);
        assert!(!format!("{o:?}").contains(&KEY[8..]));
        let o: Outcome<()> = scrub_outcome(Outcome::Unknown { reason: format!("x{KEY}y") }, &secret());
        assert!(!format!("{o:?}").contains(&KEY[8..]));
    }

    #[test]
    fn transport_errors() {
        let s = secret();
        let retry = |e: ureq::Error| kind(&classify_error::<()>(&e, &s));
        assert_eq!(retry(ureq::Error::HostNotFound), "retry None");
        assert_eq!(retry(ureq::Error::Timeout(ureq::Timeout::Connect)), "retry None");
        assert_eq!(retry(ureq::Error::Timeout(ureq::Timeout::Resolve)), "retry None");
        assert_eq!(retry(ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused))), "retry None");
        assert_eq!(retry(ureq::Error::ConnectionFailed), "retry None");
        assert_eq!(retry(ureq::Error::Timeout(ureq::Timeout::Global)), "unknown");
        assert_eq!(retry(ureq::Error::Timeout(ureq::Timeout::RecvResponse)), "unknown");
        assert_eq!(retry(ureq::Error::Timeout(ureq::Timeout::SendBody)), "unknown");
        assert_eq!(retry(ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionReset))), "unknown");
        assert_eq!(retry(ureq::Error::Io(io::Error::from(io::ErrorKind::UnexpectedEof))), "unknown");
        assert_eq!(retry(ureq::Error::Io(io::Error::from(io::ErrorKind::BrokenPipe))), "unknown");
        assert_eq!(retry(ureq::Error::Io(io::Error::from(io::ErrorKind::HostUnreachable))), "unknown");
        assert_eq!(retry(ureq::Error::BodyExceedsLimit(5)), "unknown");
        assert_eq!(retry(ureq::Error::Tls("handshake")), "unknown");
        assert_eq!(retry(ureq::Error::BadUri("x".into())), "fail 0");
        let leaky = ureq::Error::Io(io::Error::other(format!("reset; key was {KEY}")));
        assert!(!format!("{:?}", classify_error::<()>(&leaky, &s)).contains(&KEY[8..]));
    }

    #[test]
    fn forms() {
        let req = TransferRequest {
            amount: 1234,
            currency: "EUR".into(),
            destination: "acct_1".into(),
            transfer_group: Some("event 7".into()),
            description: Some("".into()),
            metadata: vec![("payout id".into(), "p&1".into()), ("z".into(), "é".into())],
        };
        assert_eq!(
            transfer_form(&req).unwrap().encode(),
            "amount=1234&currency=eur&destination=acct_1&transfer_group=event%207&metadata[payout%20id]=p%261&metadata[z]=%C3%A9"
        );
        for bad in [
            TransferRequest { amount: 0, ..req.clone() },
            TransferRequest { amount: -5, ..req.clone() },
            TransferRequest { currency: "EURO".into(), ..req.clone() },
            TransferRequest { currency: "€".into(), ..req.clone() },
            TransferRequest { destination: "".into(), ..req.clone() },
            TransferRequest { metadata: vec![("a]b".into(), "x".into())], ..req.clone() },
            TransferRequest { metadata: vec![("".into(), "x".into())], ..req.clone() },
        ] {
            assert!(transfer_form(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(reversal_form(&ReversalRequest::default()).unwrap().encode(), "");
        assert_eq!(
            reversal_form(&ReversalRequest { amount: Some(5), metadata: vec![("r".into(), "1".into())] }).unwrap().encode(),
            "amount=5&metadata[r]=1"
        );
        assert!(reversal_form(&ReversalRequest { amount: Some(0), metadata: vec![] }).is_err());
    }

    #[test]
    fn ids_and_keys() {
        for ok in ["tr_1", "tr_1ABCdef_99", "tr_abcdefghijklmnopqrstuvwx"] {
            assert!(validate_transfer_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "tr_", "tr", "ch_123", "tr_../../v1/x", "tr_1/reversals", "tr_1?x=1", "tr_ 1", "TR_1", "tr_1\n", "tr_é"] {
            assert!(validate_transfer_id(bad).is_err(), "{bad}");
        }
        assert!(validate_transfer_id(&format!("tr_{}", "a".repeat(300))).is_err());
        assert!(validate_idempotency_key("payout-42-try").is_ok());
        assert!(validate_idempotency_key(&"k".repeat(255)).is_ok());
        for bad in ["", "a b", "a\nb", "é", &"k".repeat(256)] {
            assert!(validate_idempotency_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_is_send_sync_and_debug_is_masked() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Client>();
        let c = Client::new(Config { base_url: "http://127.0.0.1:1/".into(), ..Config::new(secret()) }).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(&KEY[8..]), "{shown}");
        assert!(shown.contains("sk_test_****XYZW"));
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
    }
}
