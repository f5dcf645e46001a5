//! Thin wrapper over the `tokenizers` crate.
//!
//! The shipped `tokenizer.json` truncates and pads every text to 128 tokens
//! (a leftover of how the checkpoint was exported); sentence-transformers
//! ignores that and truncates at the model's `max_seq_length` of 256 without
//! padding. We override both settings so that token ids match what
//! sentence-transformers feeds the model. Special tokens are kept, so the
//! empty string becomes exactly `[CLS] [SEP]`.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::ModelError;

pub(crate) struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` and configures truncation at `max_tokens`
    /// (counting `[CLS]`/`[SEP]`) with no padding.
    pub fn load(path: &Path, max_tokens: usize) -> Result<Self, ModelError> {
        // The tokenizer only parallelises batch calls, which we never make;
        // switching it off as well guarantees it never starts its rayon pool
        // inside a PostgreSQL backend, which must stay single-threaded.
        tokenizers::utils::parallelism::set_parallelism(false);

        let load_err = |message: String| ModelError::TokenizerLoad {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(|e| load_err(e.to_string()))?;
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| load_err(e.to_string()))?;
        inner.with_padding(None);
        Ok(TextTokenizer { inner })
    }

    /// Token ids of `text`, including `[CLS]` and `[SEP]`, at most
    /// `max_tokens` of them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        // `encode_fast` skips the char-offset bookkeeping we do not use; the
        // ids are the same as `encode`'s.
        let enc = self
            .inner
            .encode_fast(text, true)
            .map_err(|e| ModelError::Tokenize {
                message: e.to_string(),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Largest id the tokenizer can produce, plus one.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
