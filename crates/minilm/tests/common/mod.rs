//! Shared helpers of the integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

use minilm::Model;

/// Model folder: `MINILM_MODEL_DIR`, or the machine's installed copy.
pub fn model_dir() -> PathBuf {
    std::env::var_os("MINILM_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/share/sponsorship/all-MiniLM-L6-v2"))
}

pub fn load_model() -> Model {
    let dir = model_dir();
    Model::load(&dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

/// One entry of `reference/embedding_reference.json`.
pub struct RefItem {
    pub text: String,
    pub input_ids: Vec<u32>,
    pub untruncated_tokens: usize,
    pub vector: Vec<f32>,
}

pub fn reference() -> Vec<RefItem> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reference/embedding_reference.json"
    );
    let text = std::fs::read_to_string(path).expect("reference file is readable");
    let json: serde_json::Value = serde_json::from_str(&text).expect("reference is JSON");
    json["items"]
        .as_array()
        .expect("items array")
        .iter()
        .map(|it| RefItem {
            text: it["text"].as_str().expect("text").to_string(),
            input_ids: it["input_ids"]
                .as_array()
                .expect("input_ids")
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect(),
            untruncated_tokens: it["untruncated_tokens"].as_u64().expect("count") as usize,
            vector: it["vector"]
                .as_array()
                .expect("vector")
                .iter()
                .map(|v| v.as_f64().expect("float") as f32)
                .collect(),
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

pub fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

/// A fresh, empty directory under the system temp dir, unique per test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("minilm-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
