//! `calculate_platform_fee`: the fee rule of `money::fee` with each organization's settings.
//!
//! It is called once per row over whole tables of orders, so it must cost next to nothing:
//! an organization's settings are read once per statement (with the owner's rights: the
//! settings are visible to org admins only, but the fee is the same whoever asks) and kept
//! while the statement's snapshot sees exactly what it saw (see `SnapshotKey`). The function
//! does not pin a search_path in its definition: a pinned setting would cost microseconds per
//! row (see 90_finalize.sql). It pins it only around the one query it runs on a cache miss,
//! so no operator of that query resolves through a schema the caller put first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PgOid, Uuid};

use crate::error::{OrRaise, SqlError};
use crate::gucs;
use crate::money::currency::{Currency, CurrencyError};
use crate::money::fee::{FeeError, FeePolicy, Split};
use crate::money::stages::{self, StageError};

/// An organization's fee settings as stored (`None`: no payout configuration).
#[derive(Debug, Clone, Copy)]
struct OrgFees {
    exists: bool,
    rate_bps: Option<i32>,
    min_fee: Option<i64>,
    max_fee: Option<i64>,
}

/// UUIDs are random: folding their halves is a good enough hash, and far cheaper than SipHash.
#[derive(Default)]
struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_ne_bytes(b);
        }
    }
}

type ByOrg = HashMap<[u8; 16], OrgFees, BuildHasherDefault<UuidHasher>>;

/// The settings read under one snapshot, and what it showed. The key is what decides a
/// snapshot's visibility: within one transaction (its local id), a snapshot with the same
/// xmin, xmax and count of running transactions sees exactly the same transactions as
/// committed (transactions that start later have ids at or above xmax, so the running set
/// can only shrink, which changes the count), and the command id covers the transaction's
/// own changes.
type SnapshotKey = (u32, u32, u32, u32, i32, bool, u32);

#[derive(Default)]
struct Cache {
    snapshot: Option<SnapshotKey>,
    orgs: ByOrg,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn local_transaction_id() -> u32 {
    // SAFETY: MyProc is this backend's PGPROC.
    unsafe {
        #[cfg(not(feature = "pg17"))]
        {
            (*pg_sys::MyProc).lxid
        }
        #[cfg(feature = "pg17")]
        {
            (*pg_sys::MyProc).vxid.lxid
        }
    }
}

fn snapshot_key() -> Option<SnapshotKey> {
    // SAFETY: reads fields of the active snapshot, if there is one.
    unsafe {
        let s = pg_sys::GetActiveSnapshot();
        if s.is_null() || (*s).snapshot_type != pg_sys::SnapshotType::SNAPSHOT_MVCC {
            return None;
        }
        Some((
            local_transaction_id(),
            (*s).xmin.into(),
            (*s).xmax.into(),
            (*s).xcnt,
            (*s).subxcnt,
            (*s).suboverflowed,
            (*s).curcid,
        ))
    }
}

const ORG_SQL: &str = "
SELECT EXISTS (SELECT 1 FROM sponsorship.organizations o WHERE o.id OPERATOR(pg_catalog.=) $1),
       c.platform_fee_bps, c.min_fee_cents, c.max_fee_cents
  FROM (SELECT 1) one
  LEFT JOIN sponsorship.payout_configurations c ON c.org_id OPERATOR(pg_catalog.=) $1";

fn read_org(org: Uuid) -> Result<OrgFees, MoneyError> {
    let uuid = PgOid::BuiltIn(pg_sys::BuiltinOid::UUIDOID);
    // The caller's search_path is not pinned here (see the module's note): pin it for the one
    // query run with the owner's rights.
    let read = super::owner::with_pinned_search_path(|| super::owner::as_owner_of("sponsorship.payout_configurations", || {
        Spi::connect(|client| {
            super::load::select_prepared(client, ORG_SQL, &[uuid], &[org.into()], |mut rows| {
                let row = rows.next().expect("one row");
                Ok(OrgFees {
                    exists: row.get::<bool>(1)?.unwrap_or(false),
                    rate_bps: row.get::<i32>(2)?,
                    min_fee: row.get::<i64>(3)?,
                    max_fee: row.get::<i64>(4)?,
                })
            })
        })
    }))?;
    Ok(read?)
}

fn org_fees(org: Uuid) -> Result<OrgFees, MoneyError> {
    let key = snapshot_key();
    let hit = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if key.is_none() || c.snapshot != key {
            c.snapshot = key;
            c.orgs.clear();
            return None;
        }
        c.orgs.get(org.as_bytes()).copied()
    });
    if let Some(f) = hit {
        return Ok(f);
    }
    let f = read_org(org)?;
    if key.is_some() {
        CACHE.with(|c| c.borrow_mut().orgs.insert(*org.as_bytes(), f));
    }
    Ok(f)
}

#[derive(Debug, thiserror::Error)]
pub enum MoneyError {
    #[error("{0} must not be NULL")]
    Null(&'static str),
    #[error("organization {0} does not exist")]
    UnknownOrganization(Uuid),
    #[error(transparent)]
    Fee(#[from] FeeError),
    #[error(transparent)]
    Currency(#[from] CurrencyError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error("the fee {fee} must be between 0 and the gross amount {gross}")]
    FeeOutsideGross { gross: i64, fee: i64 },
    #[error("could not read the organization's fee settings: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
    #[error("could not read the organization's fee settings: {0}")]
    Load(#[from] super::load::LoadError),
}

impl SqlError for MoneyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            MoneyError::Null(_) => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            MoneyError::UnknownOrganization(_) => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            MoneyError::Fee(_)
            | MoneyError::Currency(_)
            | MoneyError::Stage(_)
            | MoneyError::FeeOutsideGross { .. } => {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
            MoneyError::Spi(_) | MoneyError::Load(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
}

/// The platform fee on `gross` minor units for `org`, in `currency`.
pub fn split_for(gross: i64, org: Uuid, currency: Currency) -> Result<Split, MoneyError> {
    let f = org_fees(org)?;
    if !f.exists {
        return Err(MoneyError::UnknownOrganization(org));
    }
    let rate = f
        .rate_bps
        .map(i64::from)
        .unwrap_or_else(|| gucs::PLATFORM_FEE_BPS.get() as i64);
    Ok(FeePolicy::new(rate, f.min_fee, f.max_fee)?.split(gross, currency)?)
}

fn fee_of(
    amount: Option<i64>,
    org: Option<Uuid>,
    currency: Result<Currency, MoneyError>,
) -> Result<i64, MoneyError> {
    let amount = amount.ok_or(MoneyError::Null("p_amount_cents"))?;
    let org = org.ok_or(MoneyError::Null("p_organization_id"))?;
    Ok(split_for(amount, org, currency?)?.fee)
}

/// The platform fee, in minor units, on an amount in minor units of a two-decimal (or
/// zero-decimal) currency: the organization's rate (or `sponsorship.platform_fee_bps`),
/// rounded half up to one minor unit, within its minimum and maximum fee, never above the
/// amount. For three-decimal currencies use the overload that takes the currency.
#[pg_extern(stable, parallel_safe, name = "calculate_platform_fee")]
pub fn calculate_platform_fee(p_amount_cents: Option<i64>, p_organization_id: Option<Uuid>) -> i64 {
    fee_of(p_amount_cents, p_organization_id, Ok(Currency::USD)).or_raise()
}

/// The platform fee on an amount in minor units of `p_currency` (ISO 4217, upper case): as
/// the two-argument form, rounded to the currency's smallest step (ten minor units for
/// three-decimal currencies, as Stripe requires). Unknown currencies are an error.
#[pg_extern(stable, parallel_safe, name = "calculate_platform_fee")]
pub fn calculate_platform_fee_in(
    p_amount_cents: Option<i64>,
    p_organization_id: Option<Uuid>,
    p_currency: Option<&str>,
) -> i64 {
    let currency = p_currency
        .ok_or(MoneyError::Null("p_currency"))
        .and_then(|c| Ok(Currency::from_code(c)?));
    fee_of(p_amount_cents, p_organization_id, currency).or_raise()
}

/// The currencies the platform settles in, with the decimals of their minor unit and the
/// smallest step Stripe accepts.
#[pg_extern(immutable, parallel_safe)]
pub fn currencies() -> TableIterator<
    'static,
    (
        name!(currency, String),
        name!(exponent, i32),
        name!(step_minor_units, i64),
    ),
> {
    TableIterator::new(
        Currency::all().map(|c| (c.code.to_string(), c.exponent as i32, c.granularity())),
    )
}

/// The decimals of a currency's minor unit; an unknown currency is an error.
#[pg_extern(immutable, strict, parallel_safe)]
pub fn currency_exponent(p_currency: &str) -> i32 {
    Currency::from_code(p_currency)
        .map(|c| c.exponent as i32)
        .map_err(MoneyError::from)
        .or_raise()
}

impl SqlError for CurrencyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
    }
}

type StageRow = (String, String, i32, i64, i64, i64, bool);

fn stage_rows(
    gross: i64,
    fee: i64,
    currency: &str,
    milestone: Option<&serde_json::Value>,
    order_status: &str,
) -> Result<Vec<StageRow>, MoneyError> {
    if gross < 0 {
        return Err(FeeError::NegativeAmount(gross).into());
    }
    if fee < 0 || fee > gross {
        return Err(MoneyError::FeeOutsideGross { gross, fee });
    }
    let currency = Currency::from_code(currency)?;
    let plan = stages::plan(milestone)?;
    let split = Split { gross, fee, net: gross - fee };
    Ok(stages::amounts(split, &plan, currency)
        .into_iter()
        .map(|a| {
            (
                a.stage.name.clone(),
                a.stage.due_on.name().to_string(),
                a.stage.share_bps as i32,
                a.gross,
                a.fee,
                a.net,
                a.stage.due_on.reached_by(order_status),
            )
        })
        .collect())
}

/// The payout stages of an order: its `milestone` plan (or one stage, `full`, on
/// acceptance) with each stage's share of the gross, fee and net (they add up to the order
/// exactly) and whether an order in `p_order_status` has reached it.
#[pg_extern(immutable, parallel_safe)]
pub fn payout_stages(
    p_gross_cents: Option<i64>,
    p_fee_cents: Option<i64>,
    p_currency: Option<&str>,
    p_milestone: Option<pgrx::JsonB>,
    p_order_status: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(stage, String),
        name!(due_on, String),
        name!(share_bps, i32),
        name!(gross_cents, i64),
        name!(fee_cents, i64),
        name!(net_cents, i64),
        name!(due, bool),
    ),
> {
    let rows = (|| {
        stage_rows(
            p_gross_cents.ok_or(MoneyError::Null("p_gross_cents"))?,
            p_fee_cents.ok_or(MoneyError::Null("p_fee_cents"))?,
            p_currency.ok_or(MoneyError::Null("p_currency"))?,
            p_milestone.as_ref().map(|j| &j.0),
            p_order_status.ok_or(MoneyError::Null("p_order_status"))?,
        )
    })()
    .or_raise();
    TableIterator::new(rows)
}
