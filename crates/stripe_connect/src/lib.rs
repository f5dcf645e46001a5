//! A small, blocking Stripe Connect client for paying event organizers
//! exactly once.
//!
//! The client never decides on its own to give up or to retry: every call
//! returns an [`Outcome`] that tells the caller what is known about the
//! request, so the caller (a PostgreSQL extension's worker threads) can keep
//! its own durable state machine:
//!
//! * [`Outcome::Done`]: Stripe did it; here is the object.
//! * [`Outcome::Retry`]: Stripe did **not** do it (or told us to retry);
//!   retry later with the **same** idempotency key.
//! * [`Outcome::Fail`]: Stripe refused; retrying will not help.
//! * [`Outcome::Unknown`]: it may or may not have happened. Retry with the
//!   **same** idempotency key (Stripe replays the stored result), or reconcile
//!   with [`Client::list_transfers_by_group`]. Never switch to a new key.
//!
//! The API key never appears in any reason, error, `Debug` output or log line
//! this crate produces (server-provided text is scrubbed too).

mod client;
mod concurrent;
mod config;
pub mod form;
pub mod retry;
mod secret;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{Client, USER_AGENT};
pub use concurrent::send_concurrently;
pub use config::{Config, ConfigError};
pub use secret::{KeyFileError, Secret};

/// The result of one API call. See the crate docs and README for the table.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// 2xx with a body that parsed.
    Done(T),
    /// Not done, safe and useful to retry with the same idempotency key.
    /// `status` is `None` when the request never reached the server.
    Retry { reason: String, status: Option<u16>, retry_after: Option<Duration> },
    /// Final. `status` is the HTTP status, or **0** when the client refused to
    /// send the request (invalid input; nothing left the process).
    /// `code` is Stripe's `error.code`, or `error.type` when there is no code
    /// (so an idempotency mismatch reads `idempotency_error`).
    Fail { reason: String, status: u16, code: Option<String> },
    /// The request may have been carried out. Retry with the same key.
    Unknown { reason: String },
}

impl<T> Outcome<T> {
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }

    /// The reason text, if this is not `Done`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Done(_) => None,
            Outcome::Retry { reason, .. } | Outcome::Fail { reason, .. } | Outcome::Unknown { reason } => Some(reason),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(t) => Outcome::Done(f(t)),
            Outcome::Retry { reason, status, retry_after } => Outcome::Retry { reason, status, retry_after },
            Outcome::Fail { reason, status, code } => Outcome::Fail { reason, status, code },
            Outcome::Unknown { reason } => Outcome::Unknown { reason },
        }
    }

    /// `Done(t)` → `Some(t)`.
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }
}

/// `POST /v1/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferRequest {
    /// In minor units (cents). Must be ≥ 1.
    pub amount: i64,
    /// ISO 4217, three letters; sent lower-case.
    pub currency: String,
    /// The connected account, `acct_...`.
    pub destination: String,
    pub transfer_group: Option<String>,
    pub description: Option<String>,
    /// Sent as `metadata[key]=value`, in this order.
    pub metadata: Vec<(String, String)>,
}

/// `POST /v1/transfers/{id}/reversals`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReversalRequest {
    /// Minor units; `None` reverses everything that remains.
    pub amount: Option<i64>,
    pub metadata: Vec<(String, String)>,
}

/// The fields of a Stripe transfer this crate uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub destination: String,
    #[serde(default)]
    pub transfer_group: Option<String>,
    #[serde(default)]
    pub amount_reversed: i64,
    #[serde(default)]
    pub reversed: bool,
    #[serde(default, deserialize_with = "client::null_as_empty_map")]
    pub metadata: BTreeMap<String, String>,
}

/// The fields of a Stripe transfer reversal this crate uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    pub id: String,
    pub amount: i64,
    /// The id of the reversed transfer.
    pub transfer: String,
}
