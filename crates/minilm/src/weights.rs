//! Model weights read in place from a read-only memory map of
//! `model.safetensors`.
//!
//! Mapping instead of reading means every PostgreSQL backend that loads the
//! model shares the same page-cache pages: 87 MiB of weights cost physical
//! memory once per machine, not once per connection, and loading is nearly
//! free. The header is parsed and validated by the `safetensors` crate; this
//! module only records where each tensor lives and checks dtype and shape
//! against `config.json`.
//!
//! A tensor whose bytes are not 4-byte aligned in the file (possible in
//! principle, because the data section starts right after a JSON header of
//! arbitrary length) or a big-endian host gets a private, decoded copy of
//! that tensor instead; the common case is zero-copy.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::config::BertConfig;
use crate::ModelError;

/// Where the values of one f32 tensor are.
enum Tensor {
    /// `len` f32 values at byte `offset` of the map; the offset was checked
    /// to be in bounds and 4-byte aligned when the file was loaded.
    Mapped { offset: usize, len: usize },
    /// Decoded copy, for misaligned data or big-endian hosts.
    Owned(Box<[f32]>),
}

/// Handles to the tensors of one encoder layer.
struct LayerTensors {
    query_w: Tensor,
    query_b: Tensor,
    key_w: Tensor,
    key_b: Tensor,
    value_w: Tensor,
    value_b: Tensor,
    attn_out_w: Tensor,
    attn_out_b: Tensor,
    attn_ln_g: Tensor,
    attn_ln_b: Tensor,
    inter_w: Tensor,
    inter_b: Tensor,
    out_w: Tensor,
    out_b: Tensor,
    out_ln_g: Tensor,
    out_ln_b: Tensor,
}

/// Borrowed f32 slices of one encoder layer, as the forward pass uses them.
/// Linear weights are `[out, in]` row-major, as PyTorch stores them.
pub(crate) struct LayerView<'a> {
    pub query_w: &'a [f32],
    pub query_b: &'a [f32],
    pub key_w: &'a [f32],
    pub key_b: &'a [f32],
    pub value_w: &'a [f32],
    pub value_b: &'a [f32],
    pub attn_out_w: &'a [f32],
    pub attn_out_b: &'a [f32],
    pub attn_ln_g: &'a [f32],
    pub attn_ln_b: &'a [f32],
    pub inter_w: &'a [f32],
    pub inter_b: &'a [f32],
    pub out_w: &'a [f32],
    pub out_b: &'a [f32],
    pub out_ln_g: &'a [f32],
    pub out_ln_b: &'a [f32],
}

/// Borrowed f32 slices of the embedding block.
pub(crate) struct EmbeddingView<'a> {
    /// `[vocab, hidden]`
    pub word: &'a [f32],
    /// `[max_positions, hidden]`
    pub position: &'a [f32],
    /// `[type_vocab, hidden]`
    pub token_type: &'a [f32],
    pub ln_g: &'a [f32],
    pub ln_b: &'a [f32],
}

/// All weights of the encoder (the unused pooler head is not loaded).
pub(crate) struct Weights {
    map: Mmap,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_ln_g: Tensor,
    emb_ln_b: Tensor,
    layers: Vec<LayerTensors>,
}

impl Weights {
    /// Maps `path` and resolves every tensor the encoder needs.
    pub fn load(path: &Path, cfg: &BertConfig) -> Result<Self, ModelError> {
        let io_err = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: the map is read-only and private to this process. The only
        // hazard is another process truncating or rewriting the file while it
        // is mapped, which would be reflected in (or fault) our reads; model
        // files are installed once and never edited in place, and the same
        // contract holds for every mmap-based model loader.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;

        let (word, position, token_type, emb_ln_g, emb_ln_b, layers) = {
            let st = SafeTensors::deserialize(&map).map_err(|source| ModelError::Safetensors {
                path: path.to_path_buf(),
                source,
            })?;
            let r = Resolver {
                path,
                st: &st,
                base: map.as_ptr() as usize,
            };
            let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
            let word = r.get("embeddings.word_embeddings.weight", &[cfg.vocab_size, h])?;
            let position = r.get(
                "embeddings.position_embeddings.weight",
                &[cfg.max_position_embeddings, h],
            )?;
            let token_type = r.get(
                "embeddings.token_type_embeddings.weight",
                &[cfg.type_vocab_size, h],
            )?;
            let emb_ln_g = r.get("embeddings.LayerNorm.weight", &[h])?;
            let emb_ln_b = r.get("embeddings.LayerNorm.bias", &[h])?;
            let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
            for l in 0..cfg.num_hidden_layers {
                let p = format!("encoder.layer.{l}.");
                let t = |suffix: &str, shape: &[usize]| r.get(&format!("{p}{suffix}"), shape);
                layers.push(LayerTensors {
                    query_w: t("attention.self.query.weight", &[h, h])?,
                    query_b: t("attention.self.query.bias", &[h])?,
                    key_w: t("attention.self.key.weight", &[h, h])?,
                    key_b: t("attention.self.key.bias", &[h])?,
                    value_w: t("attention.self.value.weight", &[h, h])?,
                    value_b: t("attention.self.value.bias", &[h])?,
                    attn_out_w: t("attention.output.dense.weight", &[h, h])?,
                    attn_out_b: t("attention.output.dense.bias", &[h])?,
                    attn_ln_g: t("attention.output.LayerNorm.weight", &[h])?,
                    attn_ln_b: t("attention.output.LayerNorm.bias", &[h])?,
                    inter_w: t("intermediate.dense.weight", &[i, h])?,
                    inter_b: t("intermediate.dense.bias", &[i])?,
                    out_w: t("output.dense.weight", &[h, i])?,
                    out_b: t("output.dense.bias", &[h])?,
                    out_ln_g: t("output.LayerNorm.weight", &[h])?,
                    out_ln_b: t("output.LayerNorm.bias", &[h])?,
                });
            }
            (word, position, token_type, emb_ln_g, emb_ln_b, layers)
        };

        Ok(Weights {
            map,
            word,
            position,
            token_type,
            emb_ln_g,
            emb_ln_b,
            layers,
        })
    }

    /// Number of encoder layers loaded.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// How many tensors are served straight from the map (the rest are
    /// copies); exposed for tests and diagnostics.
    pub fn mapped_tensor_count(&self) -> (usize, usize) {
        let mut all: Vec<&Tensor> = vec![
            &self.word,
            &self.position,
            &self.token_type,
            &self.emb_ln_g,
            &self.emb_ln_b,
        ];
        for l in &self.layers {
            all.extend([
                &l.query_w,
                &l.query_b,
                &l.key_w,
                &l.key_b,
                &l.value_w,
                &l.value_b,
                &l.attn_out_w,
                &l.attn_out_b,
                &l.attn_ln_g,
                &l.attn_ln_b,
                &l.inter_w,
                &l.inter_b,
                &l.out_w,
                &l.out_b,
                &l.out_ln_g,
                &l.out_ln_b,
            ]);
        }
        let mapped = all
            .iter()
            .filter(|t| matches!(t, Tensor::Mapped { .. }))
            .count();
        (mapped, all.len())
    }

    pub fn embeddings(&self) -> EmbeddingView<'_> {
        EmbeddingView {
            word: self.f32s(&self.word),
            position: self.f32s(&self.position),
            token_type: self.f32s(&self.token_type),
            ln_g: self.f32s(&self.emb_ln_g),
            ln_b: self.f32s(&self.emb_ln_b),
        }
    }

    /// Views of layer `l`; `l` must be below [`Weights::num_layers`].
    pub fn layer(&self, l: usize) -> LayerView<'_> {
        let t = &self.layers[l];
        LayerView {
            query_w: self.f32s(&t.query_w),
            query_b: self.f32s(&t.query_b),
            key_w: self.f32s(&t.key_w),
            key_b: self.f32s(&t.key_b),
            value_w: self.f32s(&t.value_w),
            value_b: self.f32s(&t.value_b),
            attn_out_w: self.f32s(&t.attn_out_w),
            attn_out_b: self.f32s(&t.attn_out_b),
            attn_ln_g: self.f32s(&t.attn_ln_g),
            attn_ln_b: self.f32s(&t.attn_ln_b),
            inter_w: self.f32s(&t.inter_w),
            inter_b: self.f32s(&t.inter_b),
            out_w: self.f32s(&t.out_w),
            out_b: self.f32s(&t.out_b),
            out_ln_g: self.f32s(&t.out_ln_g),
            out_ln_b: self.f32s(&t.out_ln_b),
        }
    }

    fn f32s<'a>(&'a self, t: &'a Tensor) -> &'a [f32] {
        match t {
            Tensor::Owned(v) => v,
            Tensor::Mapped { offset, len } => {
                let bytes = &self.map[*offset..*offset + *len * 4];
                assert_eq!(bytes.as_ptr().align_offset(std::mem::align_of::<f32>()), 0);
                // SAFETY: `bytes` is in bounds (slicing above checks it) and
                // 4-byte aligned (asserted; also checked at load), holds
                // exactly `len * 4` bytes, every bit pattern is a valid f32,
                // the host is little-endian like the file (otherwise the
                // tensor would be `Owned`), and the map is immutable for the
                // lifetime of `self`.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), *len) }
            }
        }
    }
}

/// Looks tensors up in the parsed header and checks them.
struct Resolver<'a, 'data> {
    path: &'a Path,
    st: &'a SafeTensors<'data>,
    base: usize,
}

impl Resolver<'_, '_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let path = || -> PathBuf { self.path.to_path_buf() };
        let view = self
            .st
            .tensor(name)
            .map_err(|_| ModelError::MissingTensor {
                path: path(),
                name: name.to_string(),
            })?;
        if view.dtype() != Dtype::F32 {
            return Err(ModelError::TensorDtype {
                path: path(),
                name: name.to_string(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != shape {
            return Err(ModelError::TensorShape {
                path: path(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let data = view.data();
        let len = shape.iter().product::<usize>();
        if data.len() != len * 4 {
            // safetensors validates this already; kept so the invariant the
            // unsafe cast relies on is checked here, next to where it is used.
            return Err(ModelError::TensorShape {
                path: path(),
                name: name.to_string(),
                expected: shape.to_vec(),
                found: vec![data.len() / 4],
            });
        }
        let aligned = data.as_ptr().align_offset(std::mem::align_of::<f32>()) == 0;
        if aligned && cfg!(target_endian = "little") {
            Ok(Tensor::Mapped {
                offset: data.as_ptr() as usize - self.base,
                len,
            })
        } else {
            let values = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Ok(Tensor::Owned(values))
        }
    }
}
