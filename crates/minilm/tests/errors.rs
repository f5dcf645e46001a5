//! Bad folders and bad files must give a `ModelError` naming the file (and
//! tensor), never a panic.

mod common;

use std::fs;
use std::path::Path;

use common::{cosine, load_model, model_dir, temp_dir};
use minilm::{Model, ModelError};

/// A temp model folder with the real config and tokenizer and the given
/// bytes as `model.safetensors`.
fn folder_with_weights(tag: &str, weights: &[u8]) -> std::path::PathBuf {
    let dir = temp_dir(tag);
    for f in ["config.json", "tokenizer.json"] {
        fs::copy(model_dir().join(f), dir.join(f)).expect("copy");
    }
    fs::write(dir.join("model.safetensors"), weights).expect("write weights");
    dir
}

/// A safetensors file with the given `(name, dtype, shape)` tensors, filled
/// with zeros.
fn safetensors_bytes(tensors: &[(&str, &str, &[usize])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * if *dtype == "F16" { 2 } else { 4 };
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + offset, 0);
    out
}

fn message(r: Result<Model, ModelError>) -> (ModelError, String) {
    match r {
        Ok(_) => panic!("loading should have failed"),
        Err(e) => {
            let m = e.to_string();
            (e, m)
        }
    }
}

#[test]
fn missing_folder_names_the_path() {
    let dir = Path::new("/nonexistent/minilm-model-folder");
    let (e, msg) = message(Model::load(dir));
    assert!(matches!(e, ModelError::Io { .. }), "{e:?}");
    assert!(
        msg.contains("/nonexistent/minilm-model-folder/config.json"),
        "{msg}"
    );
}

#[test]
fn missing_weights_file_names_the_path() {
    let dir = folder_with_weights("noweights", b"");
    fs::remove_file(dir.join("model.safetensors")).expect("rm");
    let (e, msg) = message(Model::load(&dir));
    assert!(matches!(e, ModelError::Io { .. }), "{e:?}");
    assert!(
        msg.contains(&dir.join("model.safetensors").display().to_string()),
        "{msg}"
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_safetensors_names_the_path() {
    let real = fs::read(model_dir().join("model.safetensors")).expect("read weights");
    let dir = folder_with_weights("truncated", &real[..real.len() / 3]);
    let (e, msg) = message(Model::load(&dir));
    assert!(matches!(e, ModelError::Safetensors { .. }), "{e:?}");
    assert!(
        msg.contains(&dir.join("model.safetensors").display().to_string()),
        "{msg}"
    );
    fs::remove_dir_all(&dir).ok();
}

#[test]
fn garbage_and_empty_safetensors_are_errors() {
    for (tag, bytes) in [
        (
            "garbage",
            b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!rest".to_vec(),
        ),
        ("huge-header", vec![0xff; 64]),
        ("empty", Vec::new()),
        ("tiny", vec![1, 2, 3]),
    ] {
        let dir = folder_with_weights(tag, &bytes);
        let (e, msg) = message(Model::load(&dir));
        assert!(
            matches!(e, ModelError::Safetensors { .. } | ModelError::Io { .. }),
            "{tag}: {e:?}"
        );
        assert!(
            msg.contains(&dir.join("model.safetensors").display().to_string()),
            "{msg}"
        );
        fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn wrong_dtype_shape_or_missing_tensor_names_the_tensor() {
    let word = "embeddings.word_embeddings.weight";
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "dtype",
            safetensors_bytes(&[(word, "F16", &[30522, 384])]),
            "F16",
        ),
        (
            "shape",
            safetensors_bytes(&[(word, "F32", &[30522, 383])]),
            "[30522, 383]",
        ),
        (
            "missing",
            safetensors_bytes(&[("something.else", "F32", &[2])]),
            "missing",
        ),
    ];
    for (tag, bytes, needle) in cases {
        let dir = folder_with_weights(tag, &bytes);
        let (e, msg) = message(Model::load(&dir));
        match tag {
            "dtype" => assert!(matches!(e, ModelError::TensorDtype { .. }), "{e:?}"),
            "shape" => assert!(matches!(e, ModelError::TensorShape { .. }), "{e:?}"),
            _ => assert!(matches!(e, ModelError::MissingTensor { .. }), "{e:?}"),
        }
        assert!(msg.contains(word), "{msg}");
        assert!(msg.contains(needle), "{msg}");
        assert!(
            msg.contains(&dir.join("model.safetensors").display().to_string()),
            "{msg}"
        );
        fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn bad_config_and_tokenizer_are_errors() {
    let dir = folder_with_weights("badconfig", b"");
    fs::write(dir.join("config.json"), "{\"hidden_size\": 384").expect("write");
    let (e, msg) = message(Model::load(&dir));
    assert!(matches!(e, ModelError::Config { .. }), "{e:?}");
    assert!(
        msg.contains(&dir.join("config.json").display().to_string()),
        "{msg}"
    );

    fs::copy(model_dir().join("config.json"), dir.join("config.json")).expect("copy");
    fs::write(dir.join("tokenizer.json"), "{\"not\": \"a tokenizer\"}").expect("write");
    let (e, msg) = message(Model::load(&dir));
    assert!(matches!(e, ModelError::TokenizerLoad { .. }), "{e:?}");
    assert!(
        msg.contains(&dir.join("tokenizer.json").display().to_string()),
        "{msg}"
    );
    fs::remove_dir_all(&dir).ok();
}

/// Shifts the data section by one byte (a header one space longer), so no
/// tensor is 4-byte aligned: the loader must fall back to copies and still
/// give the same embeddings.
#[test]
fn misaligned_tensors_are_copied() {
    let real = fs::read(model_dir().join("model.safetensors")).expect("read weights");
    let mut n_bytes = [0u8; 8];
    n_bytes.copy_from_slice(&real[..8]);
    let n = u64::from_le_bytes(n_bytes) as usize;
    let mut shifted = ((n + 1) as u64).to_le_bytes().to_vec();
    shifted.extend_from_slice(&real[8..8 + n]);
    shifted.push(b' ');
    shifted.extend_from_slice(&real[8 + n..]);
    let dir = folder_with_weights("misaligned", &shifted);
    drop(shifted);

    let copied = Model::load(&dir).expect("misaligned file still loads");
    let (mapped, total) = copied.mapped_tensors();
    assert_eq!(
        mapped, 0,
        "expected every tensor copied, {mapped} of {total} mapped"
    );
    let text = "Brand partnerships for the Lisbon tech summit";
    let a = copied.embed(text).expect("embed");
    let b = load_model().embed(text).expect("embed");
    assert!(cosine(&a, &b) > 0.999999);
    fs::remove_dir_all(&dir).ok();
}
