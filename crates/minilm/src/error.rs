//! The crate's single error type.
//!
//! Every variant that comes from a file carries the full path, and every
//! variant about a tensor carries the tensor's name, so that a message in a
//! PostgreSQL log is enough to find the broken file without a debugger.

use std::path::PathBuf;

/// Everything that can go wrong while loading the model or embedding text.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file is missing, unreadable, or cannot be memory-mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `config.json` is not valid JSON, lacks a field, or describes a model
    /// this crate does not implement.
    #[error("invalid model config {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    /// The safetensors header cannot be parsed or does not match the file
    /// (for example because the file is truncated).
    #[error("invalid safetensors file {}: {source}", path.display())]
    Safetensors {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },

    /// A tensor the model needs is not in the safetensors file.
    #[error("tensor `{name}` is missing from {}", path.display())]
    MissingTensor { path: PathBuf, name: String },

    /// A tensor has a dtype other than F32.
    #[error("tensor `{name}` in {} has dtype {dtype}, expected F32", path.display())]
    TensorDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    /// A tensor's shape disagrees with `config.json`.
    #[error("tensor `{name}` in {} has shape {found:?}, expected {expected:?}", path.display())]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    /// `tokenizer.json` cannot be loaded or configured.
    #[error("cannot load tokenizer {}: {message}", path.display())]
    TokenizerLoad { path: PathBuf, message: String },

    /// The tokenizer rejected an input text.
    #[error("tokenization failed: {message}")]
    Tokenize { message: String },

    /// Token ids passed to the model are unusable (too many, or outside the
    /// vocabulary).
    #[error("invalid token ids: {reason}")]
    InvalidTokens { reason: String },
}
