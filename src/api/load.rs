//! Reads sponsors, events, the marketplace context and the active weights from the tables
//! into the matcher's plain inputs. Runs as the caller: RLS decides what is visible.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiHeapTupleData, SpiTupleTable};
use pgrx::{JsonB, PgOid, Uuid};

use crate::matching::model::{EventInput, MarketContext, SponsorInput, Weights, WeightsError};
use crate::pgvector::Vector;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("event {0} does not exist or is not visible to you")]
    UnknownEvent(Uuid),
    #[error("sponsor {0} does not exist or is not visible to you")]
    UnknownSponsor(Uuid),
    #[error("no active scoring weights: insert a row into sponsorship.scoring_weights with is_active = true")]
    NoActiveWeights,
    #[error("the active scoring weights are invalid: {0}")]
    BadWeights(#[from] WeightsError),
    #[error("could not read the marketplace: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

impl crate::error::SqlError for LoadError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            LoadError::UnknownEvent(_)
            | LoadError::UnknownSponsor(_)
            | LoadError::NoActiveWeights => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            LoadError::BadWeights(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            LoadError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }
}

pub fn uuid_bytes(u: &Uuid) -> [u8; 16] {
    *u.as_bytes()
}

const WEIGHTS_SQL: &str =
    "SELECT version, budget_fit::float8, audience_overlap::float8, geo_fit::float8,
                                  engagement_quality::float8, objectives_similarity::float8
                             FROM sponsorship.scoring_weights WHERE is_active";

pub fn weights() -> Result<Weights, LoadError> {
    Spi::connect(|client| {
        select_prepared(client, WEIGHTS_SQL, &[], &[], |mut rows| {
            let Some(row) = rows.next() else {
                return Err(LoadError::NoActiveWeights);
            };
            Ok(Weights::new(
                row.get::<i32>(1)?.unwrap_or(0),
                row.get::<f64>(2)?.unwrap_or(f64::NAN),
                row.get::<f64>(3)?.unwrap_or(f64::NAN),
                row.get::<f64>(4)?.unwrap_or(f64::NAN),
                row.get::<f64>(5)?.unwrap_or(f64::NAN),
                row.get::<f64>(6)?.unwrap_or(f64::NAN),
            )?)
        })
    })
}

macro_rules! sponsors_sql {
    ($filter:literal) => {
        concat!(
            "
SELECT s.id, p.sponsor_id IS NOT NULL, p.annual_budget_cents, COALESCE(p.currency, 'USD'),
       p.target_audience, COALESCE(p.preferred_categories, '{}'), COALESCE(p.regions, '{}'),
       p.objectives_embedding
  FROM sponsorship.sponsors s
  LEFT JOIN sponsorship.sponsor_profiles p ON p.sponsor_id = s.id
",
            $filter,
            "
 ORDER BY s.id"
        )
    };
}
const SPONSORS_SQL: &str = sponsors_sql!(
    "
 WHERE s.id = ANY($1)"
);
const ALL_SPONSORS_SQL: &str = sponsors_sql!("");

macro_rules! events_sql {
    ($filter:literal) => {
        concat!(
            "
SELECT e.id, e.category, e.city, e.country,
       extract(epoch FROM e.start_at)::float8, extract(epoch FROM e.end_at)::float8,
       i.event_id IS NOT NULL, i.age_segments, i.geo_distribution,
       q.final_quality_score, q.quality_tier,
       pk.prices, pk.currencies, e.description_embedding
  FROM sponsorship.events e
  LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
  LEFT JOIN LATERAL (
        SELECT array_agg(p.price_cents ORDER BY p.price_cents, p.id) AS prices,
               array_agg(p.currency ORDER BY p.price_cents, p.id) AS currencies
          FROM sponsorship.sponsorship_packages p
         WHERE p.event_id = e.id AND p.is_active AND p.sold < p.inventory) pk ON true
",
            $filter,
            "
 ORDER BY e.id"
        )
    };
}
const EVENTS_SQL: &str = events_sql!(
    "
 WHERE e.id = ANY($1)"
);
const ALL_EVENTS_SQL: &str = events_sql!("");

fn sponsor_from_row(row: &SpiHeapTupleData, at: usize) -> Result<SponsorInput, LoadError> {
    let id: Uuid = row.get(at)?.expect("sponsors.id is NOT NULL");
    let target_audience: Option<JsonB> = row.get(at + 4)?;
    Ok(SponsorInput {
        id: uuid_bytes(&id),
        has_profile: row.get::<bool>(at + 1)?.unwrap_or(false),
        annual_budget_cents: row.get::<i64>(at + 2)?,
        currency: row.get::<String>(at + 3)?.unwrap_or_else(|| "USD".into()),
        embedding: row.get::<Vector>(at + 7)?.map(|v| v.0),
        ..Default::default()
    }
    .with_target_audience(target_audience.as_ref().map(|j| &j.0))
    .with_lists(
        row.get::<Vec<String>>(at + 5)?.unwrap_or_default(),
        row.get::<Vec<String>>(at + 6)?.unwrap_or_default(),
    ))
}

/// `now()` of the current transaction as Unix epoch seconds. Every path computes event
/// timing from this and the events' epochs (never from SQL arithmetic on `now()`), so a
/// cached event re-timed later gives exactly what a fresh load would.
pub fn transaction_now_epoch() -> f64 {
    // microseconds since 2000-01-01 00:00:00 UTC
    let ts = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    ts as f64 / 1_000_000.0 + 946_684_800.0
}

fn event_from_row(row: &SpiHeapTupleData, at: usize) -> Result<EventInput, LoadError> {
    use crate::matching::model::{days_until, json_shares};
    let id: Uuid = row.get(at)?.expect("events.id is NOT NULL");
    let now = transaction_now_epoch();
    let start_epoch = row.get::<f64>(at + 4)?.unwrap_or(now);
    let end_epoch = row.get::<f64>(at + 5)?;
    let prices: Vec<i64> = row.get(at + 11)?.unwrap_or_default();
    let currencies: Vec<String> = row.get(at + 12)?.unwrap_or_default();
    let age: Option<JsonB> = row.get(at + 7)?;
    let geo: Option<JsonB> = row.get(at + 8)?;
    Ok(EventInput {
        id: uuid_bytes(&id),
        category: row.get(at + 1)?,
        city: row.get(at + 2)?,
        country: row.get(at + 3)?,
        starts_in_days: days_until(start_epoch, now),
        ends_in_days: end_epoch.map(|e| days_until(e, now)),
        start_epoch: Some(start_epoch),
        end_epoch,
        has_insights: row.get::<bool>(at + 6)?.unwrap_or(false),
        age_segments: json_shares(age.as_ref().map(|j| &j.0)),
        geo_distribution: geo
            .as_ref()
            .and_then(|j| j.0.as_object())
            .map(|m| {
                let mut v: Vec<(String, f64)> = m
                    .iter()
                    .filter_map(|(k, v)| {
                        v.as_f64()
                            .filter(|x| x.is_finite() && *x > 0.0)
                            .map(|x| (k.clone(), x))
                    })
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            })
            .unwrap_or_default(),
        quality_score: row.get::<f64>(at + 9)?,
        quality_tier: row.get::<String>(at + 10)?,
        packages: prices.into_iter().zip(currencies).collect(),
        embedding: row.get::<Vector>(at + 13)?.map(|v| v.0),
    })
}

fn read_sponsors(rows: SpiTupleTable) -> Result<Vec<SponsorInput>, LoadError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(sponsor_from_row(&row, 1)?);
    }
    Ok(out)
}

fn read_events(rows: SpiTupleTable) -> Result<Vec<EventInput>, LoadError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(event_from_row(&row, 1)?);
    }
    Ok(out)
}

thread_local! {
    /// Plans kept for the life of the backend (Postgres revalidates them after DDL).
    static PLANS: RefCell<HashMap<&'static str, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// The first row's first column of a read-only query. (pgrx's `Spi::get_one*` open a
/// mutating connection, which assigns a transaction id and is refused in parallel workers.)
pub(crate) fn select_one<A: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Result<Option<A>, pgrx::spi::SpiError> {
    Spi::connect(|client| client.select(sql, Some(1), args)?.first().get_one())
}

/// The first row's first two columns of a read-only query.
pub(crate) fn select_two<A: pgrx::FromDatum + pgrx::IntoDatum, B: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    args: &[DatumWithOid],
) -> Result<(Option<A>, Option<B>), pgrx::spi::SpiError> {
    Spi::connect(|client| client.select(sql, Some(1), args)?.first().get_two())
}

/// Runs `sql` through a plan prepared once per backend.
pub(crate) fn select_prepared<'conn, R>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    types: &[PgOid],
    args: &[DatumWithOid],
    f: impl FnOnce(SpiTupleTable<'conn>) -> Result<R, LoadError>,
) -> Result<R, LoadError> {
    let known = PLANS.with(|p| p.borrow().contains_key(sql));
    if !known {
        let plan = client.prepare(sql, types)?.keep();
        PLANS.with(|p| p.borrow_mut().insert(sql, plan));
    }
    let table = PLANS.with(|p| {
        let plans = p.borrow();
        let plan = plans.get(sql).expect("prepared above");
        client.select(plan, None, args)
    })?;
    f(table)
}

/// Everything one (event, sponsor) pair needs, in one query.
const PAIR_SQL: &str = "
SELECT s.id, p.sponsor_id IS NOT NULL, p.annual_budget_cents, COALESCE(p.currency, 'USD'),
       p.target_audience, COALESCE(p.preferred_categories, '{}'), COALESCE(p.regions, '{}'),
       p.objectives_embedding,
       e.id, e.category, e.city, e.country,
       extract(epoch FROM e.start_at)::float8, extract(epoch FROM e.end_at)::float8,
       i.event_id IS NOT NULL, i.age_segments, i.geo_distribution,
       q.final_quality_score, q.quality_tier,
       pk.prices, pk.currencies, e.description_embedding,
       w.version, w.budget_fit::float8, w.audience_overlap::float8, w.geo_fit::float8,
       w.engagement_quality::float8, w.objectives_similarity::float8,
       cc.cities, cc.countries, tm.median_price_cents
  FROM sponsorship.events e
 CROSS JOIN sponsorship.sponsors s
  LEFT JOIN sponsorship.sponsor_profiles p ON p.sponsor_id = s.id
  LEFT JOIN sponsorship.event_audience_insights i ON i.event_id = e.id
  LEFT JOIN sponsorship.event_quality_scores q ON q.event_id = e.id
  LEFT JOIN LATERAL (
        SELECT array_agg(x.price_cents ORDER BY x.price_cents, x.id) AS prices,
               array_agg(x.currency ORDER BY x.price_cents, x.id) AS currencies
          FROM sponsorship.sponsorship_packages x
         WHERE x.event_id = e.id AND x.is_active AND x.sold < x.inventory) pk ON true
  LEFT JOIN sponsorship.scoring_weights w ON w.is_active
  LEFT JOIN LATERAL (
        SELECT array_agg(c.city) AS cities, array_agg(c.country) AS countries
          FROM sponsorship.mv_city_countries c
         WHERE c.city = ANY (SELECT lower(btrim(r)) FROM unnest(p.regions) r)) cc ON true
  LEFT JOIN sponsorship.mv_tier_price_medians tm
         ON tm.quality_tier = q.quality_tier AND tm.currency = COALESCE(p.currency, 'USD')
 WHERE e.id = $1 AND s.id = $2";

/// The sponsor, the event, their context and the active weights, in one prepared query.
pub fn pair(
    event_id: Uuid,
    sponsor_id: Uuid,
) -> Result<(SponsorInput, EventInput, MarketContext, Weights), LoadError> {
    let uuid = PgOid::BuiltIn(pg_sys::BuiltinOid::UUIDOID);
    let found = Spi::connect(|client| {
        select_prepared(
            client,
            PAIR_SQL,
            &[uuid, uuid],
            &[event_id.into(), sponsor_id.into()],
            |mut rows| {
                let Some(row) = rows.next() else {
                    return Ok(None);
                };
                let sponsor = sponsor_from_row(&row, 1)?;
                let event = event_from_row(&row, 9)?;
                let Some(version) = row.get::<i32>(23)? else {
                    return Err(LoadError::NoActiveWeights);
                };
                let w = |i: usize| -> Result<f64, LoadError> {
                    Ok(row.get::<f64>(i)?.unwrap_or(f64::NAN))
                };
                let weights = Weights::new(version, w(24)?, w(25)?, w(26)?, w(27)?, w(28)?)?;
                let mut ctx = MarketContext::default();
                let cities: Vec<String> = row.get(29)?.unwrap_or_default();
                let countries: Vec<String> = row.get(30)?.unwrap_or_default();
                for (city, country) in cities.into_iter().zip(countries) {
                    ctx.city_countries.entry(city).or_default().push(country);
                }
                if let (Some(median), Some(tier)) =
                    (row.get::<i64>(31)?, event.quality_tier.clone())
                {
                    ctx.tier_median_price
                        .insert((tier, sponsor.currency.trim().to_string()), median);
                }
                Ok(Some((sponsor, event, ctx, weights)))
            },
        )
    })?;
    match found {
        Some(v) => Ok(v),
        None => {
            let event_visible = select_one::<bool>(
                "SELECT EXISTS (SELECT 1 FROM sponsorship.events WHERE id = $1)",
                &[event_id.into()],
            )?
            .unwrap_or(false);
            Err(if event_visible {
                LoadError::UnknownSponsor(sponsor_id)
            } else {
                LoadError::UnknownEvent(event_id)
            })
        }
    }
}

/// Sponsors with the given ids (all when None), ordered by id.
pub fn sponsors(ids: Option<&[Uuid]>) -> Result<Vec<SponsorInput>, LoadError> {
    Spi::connect(|client| match ids {
        Some(ids) => select_prepared(
            client,
            SPONSORS_SQL,
            &[uuid_array()],
            &[ids.to_vec().into()],
            read_sponsors,
        ),
        None => select_prepared(client, ALL_SPONSORS_SQL, &[], &[], read_sponsors),
    })
}

/// Events with the given ids (all when None), ordered by id.
pub fn events(ids: Option<&[Uuid]>) -> Result<Vec<EventInput>, LoadError> {
    Spi::connect(|client| match ids {
        Some(ids) => select_prepared(
            client,
            EVENTS_SQL,
            &[uuid_array()],
            &[ids.to_vec().into()],
            read_events,
        ),
        None => select_prepared(client, ALL_EVENTS_SQL, &[], &[], read_events),
    })
}

const CITIES_SQL: &str =
    "SELECT city, array_agg(country ORDER BY country) FROM sponsorship.mv_city_countries
                            WHERE $1::text[] IS NULL OR city = ANY($1)
                            GROUP BY city";

const TIERS_SQL: &str =
    "SELECT quality_tier, currency, median_price_cents FROM sponsorship.mv_tier_price_medians";

fn uuid_array() -> PgOid {
    PgOid::BuiltIn(pg_sys::BuiltinOid::UUIDARRAYOID)
}

fn text_array() -> PgOid {
    PgOid::BuiltIn(pg_sys::BuiltinOid::TEXTARRAYOID)
}

/// The marketplace context. `cities`: only these (lower-cased) cities are looked up
/// (None: all).
pub fn context(cities: Option<Vec<String>>) -> Result<MarketContext, LoadError> {
    Spi::connect(|client| {
        let mut ctx = MarketContext::default();
        select_prepared(
            client,
            CITIES_SQL,
            &[text_array()],
            &[cities.into()],
            |rows| {
                for row in rows {
                    if let (Some(city), Some(countries)) =
                        (row.get::<String>(1)?, row.get::<Vec<String>>(2)?)
                    {
                        ctx.city_countries.insert(city, countries);
                    }
                }
                Ok(())
            },
        )?;
        select_prepared(client, TIERS_SQL, &[], &[], |rows| {
            for row in rows {
                if let (Some(t), Some(c), Some(p)) = (
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                    row.get::<i64>(3)?,
                ) {
                    ctx.tier_median_price.insert((t, c), p);
                }
            }
            Ok(())
        })?;
        Ok(ctx)
    })
}
