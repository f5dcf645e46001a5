//! Agreement with sentence-transformers, and the behaviour around
//! truncation and batching.

mod common;

use common::{cosine, load_model, model_dir, norm, reference};
use minilm::{DIMS, MAX_TOKENS};

#[test]
fn matches_sentence_transformers() {
    let model = load_model();
    let items = reference();
    assert!(items.len() >= 24);
    let mut worst = (f64::INFINITY, String::new());
    let mut max_abs = 0.0f32;
    for it in &items {
        assert_eq!(
            model.tokenize(&it.text).expect("tokenize"),
            it.input_ids,
            "token ids differ for {:?}",
            it.text
        );
        let v = model.embed(&it.text).expect("embed");
        assert_eq!(v.len(), DIMS);
        let c = cosine(&v, &it.vector);
        for (a, b) in v.iter().zip(&it.vector) {
            max_abs = max_abs.max((a - b).abs());
        }
        assert!(c >= 0.999, "cosine {c} for {:?}", it.text);
        if c < worst.0 {
            worst = (c, it.text.chars().take(60).collect());
        }
    }
    println!(
        "worst cosine vs sentence-transformers: {:.9} (1 - cos = {:.2e}) for {:?}",
        worst.0,
        1.0 - worst.0,
        worst.1
    );
    println!("largest element difference: {max_abs:.2e}");
    assert!(
        worst.0 >= 0.99999,
        "worst cosine {} for {:?}",
        worst.0,
        worst.1
    );
}

#[test]
fn vectors_have_unit_length() {
    let model = load_model();
    for it in reference() {
        let v = model.embed(&it.text).expect("embed");
        assert!(
            (norm(&v) - 1.0).abs() < 1e-5,
            "norm {} for {:?}",
            norm(&v),
            it.text
        );
        assert!(v.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn empty_string_is_cls_sep() {
    let model = load_model();
    assert_eq!(model.tokenize("").expect("tokenize"), vec![101, 102]);
    let v = model.embed("").expect("embed");
    let r = reference()
        .into_iter()
        .find(|it| it.text.is_empty())
        .expect("empty in reference");
    assert!(cosine(&v, &r.vector) >= 0.99999);
}

#[test]
fn long_text_is_truncated_to_first_256_tokens() {
    let model = load_model();
    let long: Vec<_> = reference()
        .into_iter()
        .filter(|it| it.untruncated_tokens > MAX_TOKENS)
        .collect();
    assert!(long.len() >= 2);

    // Untruncated ids straight from tokenizer.json, to build "the first 256
    // tokens" independently of the crate's truncation settings.
    let mut tok = tokenizers::Tokenizer::from_file(model_dir().join("tokenizer.json"))
        .expect("tokenizer.json");
    tok.with_truncation(None).expect("disable truncation");
    tok.with_padding(None);

    for it in &long {
        let full = tok
            .encode(it.text.as_str(), true)
            .expect("encode")
            .get_ids()
            .to_vec();
        assert_eq!(full.len(), it.untruncated_tokens);
        let mut first: Vec<u32> = full[..MAX_TOKENS - 1].to_vec();
        first.push(*full.last().expect("[SEP]"));

        let ids = model.tokenize(&it.text).expect("tokenize");
        assert_eq!(ids, first);

        let v = model.embed(&it.text).expect("embed");
        let direct = model.embed_token_ids(&first).expect("embed ids");
        assert!(cosine(&v, &direct) >= 0.999999);
        assert!(cosine(&v, &it.vector) >= 0.99999);

        let longer = format!("{} and then a tail that must be ignored entirely", it.text);
        let tail = model.embed(&longer).expect("embed");
        assert!(
            cosine(&v, &tail) >= 0.999999,
            "tail beyond 256 tokens changed the vector"
        );
    }
    assert!(model.embed_token_ids(&vec![100; MAX_TOKENS + 1]).is_err());
    assert!(model.embed_token_ids(&[]).is_err());
    assert!(model.embed_token_ids(&[101, 4_000_000, 102]).is_err());
}

#[test]
fn batch_equals_single() {
    let model = load_model();
    let items = reference();
    // Mixed lengths: empty, one word, CJK, and both >256-token texts.
    let texts: Vec<&str> = items.iter().map(|it| it.text.as_str()).collect();
    let batch = model.embed_batch(&texts).expect("batch");
    assert_eq!(batch.len(), texts.len());
    let mut worst = 1.0f64;
    for (t, b) in texts.iter().zip(&batch) {
        let single = model.embed(t).expect("embed");
        worst = worst.min(cosine(&single, b));
    }
    println!(
        "worst cosine batch vs single: {worst:.9} (1 - cos = {:.2e})",
        1.0 - worst
    );
    assert!(worst >= 0.99999);

    // Enough tokens to be split into several forward passes internally.
    let many: Vec<&str> = texts
        .iter()
        .cycle()
        .take(texts.len() * 4)
        .copied()
        .collect();
    let big = model.embed_batch(&many).expect("big batch");
    for (i, v) in big.iter().enumerate() {
        assert!(cosine(v, &batch[i % texts.len()]) >= 0.99999);
    }

    assert!(model.embed_batch(&[]).expect("empty batch").is_empty());
}

#[test]
fn weights_are_memory_mapped() {
    let model = load_model();
    let (mapped, total) = model.mapped_tensors();
    assert_eq!(mapped, total, "all tensors should be served from the map");
    assert_eq!(total, 5 + 16 * model.config().num_hidden_layers);
}

#[test]
fn model_is_usable_from_another_thread() {
    let model = std::sync::Arc::new(load_model());
    let m = model.clone();
    let v = std::thread::spawn(move || m.embed("festival sponsor").expect("embed"))
        .join()
        .expect("thread");
    assert!(cosine(&v, &model.embed("festival sponsor").expect("embed")) > 0.999999);
}

#[test]
fn debug_output_is_short() {
    let s = format!("{:?}", load_model());
    assert!(s.len() < 1000, "{s}");
    assert!(s.contains("all-MiniLM-L6-v2") || s.contains("Model"));
}
