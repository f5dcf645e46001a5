//! The subset of the Hugging Face `config.json` that the forward pass needs.
//!
//! The values are read rather than hard-coded so that a different BERT-style
//! checkpoint in the folder is either used correctly or refused with a clear
//! message, never run with silently wrong dimensions.

use std::path::Path;

use serde_json::Value;

use crate::ModelError;

/// Architecture hyper-parameters of a BERT encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f32,
}

impl BertConfig {
    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| ModelError::Config {
            path: path.to_path_buf(),
            reason,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let usize_field = |name: &str| -> Result<usize, String> {
            let n = v
                .get(name)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("`{name}` is missing or not a non-negative integer"))?;
            let n = usize::try_from(n).map_err(|_| format!("`{name}` is too large"))?;
            if n == 0 {
                return Err(format!("`{name}` must be positive"));
            }
            Ok(n)
        };
        let str_field = |name: &str, default: &str| -> Result<String, String> {
            match v.get(name) {
                None => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("`{name}` is not a string")),
            }
        };

        let model_type = str_field("model_type", "bert")?;
        if model_type != "bert" {
            return Err(format!(
                "model_type is `{model_type}`, only `bert` is supported"
            ));
        }
        let act = str_field("hidden_act", "gelu")?;
        if act != "gelu" {
            return Err(format!(
                "hidden_act is `{act}`, only exact `gelu` is supported"
            ));
        }
        let pos = str_field("position_embedding_type", "absolute")?;
        if pos != "absolute" {
            return Err(format!(
                "position_embedding_type is `{pos}`, only `absolute` is supported"
            ));
        }
        let layer_norm_eps = v
            .get("layer_norm_eps")
            .map(|e| e.as_f64().ok_or("`layer_norm_eps` is not a number"))
            .transpose()?
            .unwrap_or(1e-12);
        if !(layer_norm_eps.is_finite() && layer_norm_eps > 0.0) {
            return Err("`layer_norm_eps` must be positive".to_string());
        }

        let cfg = BertConfig {
            vocab_size: usize_field("vocab_size")?,
            hidden_size: usize_field("hidden_size")?,
            num_hidden_layers: usize_field("num_hidden_layers")?,
            num_attention_heads: usize_field("num_attention_heads")?,
            intermediate_size: usize_field("intermediate_size")?,
            max_position_embeddings: usize_field("max_position_embeddings")?,
            type_vocab_size: usize_field("type_vocab_size")?,
            layer_norm_eps: layer_norm_eps as f32,
        };
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            ));
        }
        if cfg.hidden_size != crate::DIMS {
            return Err(format!(
                "hidden_size is {}, this crate produces {}-dimensional embeddings",
                cfg.hidden_size,
                crate::DIMS
            ));
        }
        if cfg.max_position_embeddings < crate::MAX_TOKENS {
            return Err(format!(
                "max_position_embeddings {} is below MAX_TOKENS {}",
                cfg.max_position_embeddings,
                crate::MAX_TOKENS
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"hidden_act":"gelu","hidden_size":384,"intermediate_size":1536,
        "layer_norm_eps":1e-12,"max_position_embeddings":512,"model_type":"bert",
        "num_attention_heads":12,"num_hidden_layers":6,"type_vocab_size":2,"vocab_size":30522}"#;

    #[test]
    fn parses_minilm() {
        let c = BertConfig::parse(MINILM).expect("valid config");
        assert_eq!(c.head_dim(), 32);
        assert_eq!(c.intermediate_size, 1536);
        assert_eq!(c.layer_norm_eps, 1e-12);
    }

    #[test]
    fn rejects_other_activation() {
        let bad = MINILM.replace("\"gelu\"", "\"gelu_new\"");
        assert!(BertConfig::parse(&bad).unwrap_err().contains("hidden_act"));
    }

    #[test]
    fn rejects_missing_field() {
        let bad = MINILM.replace("\"num_hidden_layers\":6,", "");
        assert!(BertConfig::parse(&bad)
            .unwrap_err()
            .contains("num_hidden_layers"));
    }
}
