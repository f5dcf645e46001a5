//! Sentence embeddings with all-MiniLM-L6-v2, in pure Rust, single-threaded.
//!
//! Built to live inside a PostgreSQL backend: no threads are started (the
//! tokenizer's parallelism is switched off and every gemm call uses
//! `Parallelism::None`), there is no global state beyond what a [`Model`]
//! owns, and the 87 MiB of weights are read in place from a read-only memory
//! map so that all processes on a machine share one copy in the page cache.
//!
//! The output matches sentence-transformers (`Transformer` → mean `Pooling` →
//! `Normalize`) to float noise: cosine similarity ≥ 0.99999 on the reference
//! set in `reference/`.
//!
//! ```no_run
//! let model = minilm::Model::load(std::path::Path::new(
//!     "/usr/local/share/sponsorship/all-MiniLM-L6-v2",
//! ))?;
//! let v = model.embed("Red Bull is sponsoring the Berlin Marathon")?;
//! assert_eq!(v.len(), minilm::DIMS);
//! # Ok::<(), minilm::ModelError>(())
//! ```

mod config;
mod error;
mod forward;
mod ops;
mod pooling;
mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};

pub use config::BertConfig;
pub use error::ModelError;

use tokenizer::TextTokenizer;
use weights::Weights;

/// Length of every embedding vector.
pub const DIMS: usize = 384;

/// Longest input the model sees, in tokens including `[CLS]` and `[SEP]`;
/// longer texts are truncated, as sentence-transformers does with this
/// model's `max_seq_length`.
pub const MAX_TOKENS: usize = 256;

/// Upper bound on the tokens one forward pass of [`Model::embed_batch`]
/// processes. Larger batches are split, which keeps the scratch memory near
/// 32 MiB however many texts are passed, at no cost in speed (the gemms are
/// already large at this size).
const TOKENS_PER_FORWARD: usize = 2048;

/// A loaded all-MiniLM-L6-v2 model. Immutable after loading, so it is
/// `Send + Sync` and one instance can serve a whole process.
pub struct Model {
    dir: PathBuf,
    config: BertConfig,
    weights: Weights,
    tokenizer: TextTokenizer,
}

impl Model {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from
    /// `dir`. Fails with a [`ModelError`] naming the file (and tensor) at
    /// fault; never panics on bad files.
    pub fn load(dir: &Path) -> Result<Model, ModelError> {
        let config = BertConfig::load(&dir.join("config.json"))?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = TextTokenizer::load(&tokenizer_path, MAX_TOKENS)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(ModelError::TokenizerLoad {
                path: tokenizer_path,
                message: format!(
                    "vocabulary of {} tokens exceeds the model's vocab_size {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let weights = Weights::load(&dir.join("model.safetensors"), &config)?;
        Ok(Model {
            dir: dir.to_path_buf(),
            config,
            weights,
            tokenizer,
        })
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The architecture read from `config.json`.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Number of weight tensors served from the memory map, and the total;
    /// the two differ only for misaligned tensors or on big-endian hosts.
    pub fn mapped_tensors(&self) -> (usize, usize) {
        self.weights.mapped_tensor_count()
    }

    /// Token ids the model sees for `text`: `[CLS]`, the WordPiece ids, and
    /// `[SEP]`, truncated to [`MAX_TOKENS`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer.encode(text)
    }

    /// Embeds one text: [`DIMS`] floats with unit L2 norm.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let ids = self.tokenize(text)?;
        self.embed_token_ids(&ids)
    }

    /// Embeds already tokenized input (as returned by [`Model::tokenize`]);
    /// it must hold 1 to [`MAX_TOKENS`] ids from the vocabulary.
    pub fn embed_token_ids(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let mut out = self.forward(&[ids])?;
        out.pop().ok_or_else(|| ModelError::InvalidTokens {
            reason: "no output".to_string(),
        })
    }

    /// Embeds several texts at once, in order. Each result equals
    /// [`Model::embed`] of that text up to float rounding: texts never see
    /// each other's tokens. The texts are packed, not padded: attention is
    /// computed per text, which is what padding plus an attention mask
    /// computes for the real tokens, without spending work on pad rows.
    /// Batching turns the dense layers into larger, more efficient matrix
    /// products.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(texts.len());
        let mut chunk: Vec<&[u32]> = Vec::new();
        let mut tokens = 0;
        for seq in &ids {
            if !chunk.is_empty() && tokens + seq.len() > TOKENS_PER_FORWARD {
                out.extend(self.forward(&chunk)?);
                chunk.clear();
                tokens = 0;
            }
            chunk.push(seq);
            tokens += seq.len();
        }
        if !chunk.is_empty() {
            out.extend(self.forward(&chunk)?);
        }
        Ok(out)
    }

    /// Validates token ids, runs the encoder, and pools each text.
    fn forward(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        for seq in seqs {
            if seq.is_empty() || seq.len() > MAX_TOKENS {
                return Err(ModelError::InvalidTokens {
                    reason: format!("{} ids given, expected 1 to {MAX_TOKENS}", seq.len()),
                });
            }
            if let Some(&bad) = seq
                .iter()
                .find(|&&id| id as usize >= self.config.vocab_size)
            {
                return Err(ModelError::InvalidTokens {
                    reason: format!(
                        "id {bad} is outside the vocabulary of {}",
                        self.config.vocab_size
                    ),
                });
            }
        }
        let hidden = forward::encode(&self.config, &self.weights, seqs);
        let mut start = 0;
        Ok(seqs
            .iter()
            .map(|seq| {
                let v = pooling::mean_pool_normalize(&hidden, start, seq.len());
                start += seq.len();
                v
            })
            .collect())
    }
}

/// Short on purpose: the derived form would print the whole vocabulary.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (mapped, total) = self.mapped_tensors();
        f.debug_struct("Model")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("mapped_tensors", &format_args!("{mapped}/{total}"))
            .finish_non_exhaustive()
    }
}

/// Compile-time proof that a `Model` can be shared across threads.
#[allow(dead_code)]
fn model_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Model>();
}
