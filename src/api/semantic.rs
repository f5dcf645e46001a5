//! `semantic_sponsor_event_match`, with the old result columns.

use pgrx::prelude::*;
use pgrx::{AnyNumeric, JsonB, Uuid};

use super::load::LoadError;
use crate::error::OrRaise;
use crate::matching::score::{dot, unit};
use crate::matching::semantic::{cosine_signal, match_score, objectives_alignment};
use crate::pgvector::Vector;

const PAIR_SQL: &str = "
SELECT p.objectives_embedding, p.brand_objectives, p.target_audience,
       e.description_embedding, concat_ws(' ', e.title, e.category, e.description),
       (SELECT avg(h.description_embedding)
          FROM sponsorship.sponsorship_orders o
          JOIN sponsorship.events h ON h.id = o.event_id
         WHERE o.sponsor_id = s.id AND o.event_id <> e.id
           AND o.status IN ('live', 'completed') AND o.stripe_charge_id IS NOT NULL
           AND h.description_embedding IS NOT NULL)
  FROM sponsorship.events e
 CROSS JOIN sponsorship.sponsors s
  LEFT JOIN sponsorship.sponsor_profiles p ON p.sponsor_id = s.id
 WHERE e.id = $1 AND s.id = $2";

fn cosine(a: Option<Vector>, b: Option<&Vector>) -> Option<f64> {
    let (a, b) = (a?, b?);
    if a.dims() != b.dims() {
        return None;
    }
    let (ua, ub) = (unit(a.as_slice())?, unit(b.as_slice())?);
    Some(dot(&ua, &ub) as f64)
}

/// The sponsor's objectives as text: the description, goals and audience interests.
fn objectives_text(
    brand_objectives: Option<&serde_json::Value>,
    target_audience: Option<&serde_json::Value>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(b) = brand_objectives {
        if let Some(d) = b.get("description").and_then(|v| v.as_str()) {
            parts.push(d.to_string());
        }
        if let Some(goals) = b.get("goals").and_then(|v| v.as_array()) {
            parts.extend(goals.iter().filter_map(|g| g.as_str().map(str::to_owned)));
        }
    }
    if let Some(interests) = target_audience
        .and_then(|t| t.get("interests"))
        .and_then(|v| v.as_array())
    {
        parts.extend(
            interests
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned)),
        );
    }
    parts.join(" ")
}

fn opt_numeric(x: Option<f64>) -> Option<AnyNumeric> {
    x.map(super::matching::numeric5)
}

/// Three different signals of how a sponsor's intent meets an event (see the README):
/// meaning (embeddings), wording (objective words the event uses) and track record
/// (similarity to events the sponsor already sponsored). Unknown signals are NULL.
#[pg_extern(stable, parallel_safe)]
pub fn semantic_sponsor_event_match(
    p_sponsor_id: Uuid,
    p_event_id: Uuid,
) -> TableIterator<
    'static,
    (
        name!(match_score, Option<AnyNumeric>),
        name!(semantic_similarity, Option<AnyNumeric>),
        name!(objectives_alignment, Option<AnyNumeric>),
        name!(description_alignment, Option<AnyNumeric>),
    ),
> {
    let row = Spi::connect(|client| {
        let mut rows =
            client.select(PAIR_SQL, Some(1), &[p_event_id.into(), p_sponsor_id.into()])?;
        let Some(r) = rows.next() else {
            return Ok(None);
        };
        Ok::<_, pgrx::spi::SpiError>(Some((
            r.get::<Vector>(1)?,
            r.get::<JsonB>(2)?,
            r.get::<JsonB>(3)?,
            r.get::<Vector>(4)?,
            r.get::<String>(5)?.unwrap_or_default(),
            r.get::<Vector>(6)?,
        )))
    })
    .map_err(LoadError::from)
    .or_raise();
    let Some((
        objectives_emb,
        brand_objectives,
        target_audience,
        description_emb,
        event_text,
        history,
    )) = row
    else {
        let exists = super::load::select_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM sponsorship.events WHERE id = $1)",
            &[p_event_id.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        let err = if exists {
            LoadError::UnknownSponsor(p_sponsor_id)
        } else {
            LoadError::UnknownEvent(p_event_id)
        };
        crate::error::raise(&err, "semantic_sponsor_event_match");
    };
    let semantic = cosine_signal(cosine(objectives_emb, description_emb.as_ref()));
    let objectives = objectives_alignment(
        &objectives_text(
            brand_objectives.as_ref().map(|j| &j.0),
            target_audience.as_ref().map(|j| &j.0),
        ),
        &event_text,
    );
    let description = cosine_signal(cosine(history, description_emb.as_ref()));
    let score = match_score(semantic, objectives, description);
    TableIterator::once((
        opt_numeric(score),
        opt_numeric(semantic),
        opt_numeric(objectives),
        opt_numeric(description),
    ))
}
