//! Single-threaded throughput on the 48 sentences of
//! `reference/throughput_sentences.txt`, one text at a time and in batches.
//! `reference/throughput.py` measures sentence-transformers the same way.
//!
//! ```text
//! cargo run --release --example throughput [-- ROUNDS]
//! ```
//!
//! Each mode embeds the whole list ROUNDS times (default 7) after one
//! warm-up pass, and prints the median and best rate of those rounds; the
//! best is the least disturbed by other work on the machine.

use std::path::PathBuf;
use std::time::Instant;

use minilm::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 7,
    };
    let dir = std::env::var_os("MINILM_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/share/sponsorship/all-MiniLM-L6-v2"));
    let model = Model::load(&dir)?;
    let list = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/reference/throughput_sentences.txt"
    ))?;
    let texts: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    let tokens: usize = texts
        .iter()
        .map(|t| model.tokenize(t).map(|ids| ids.len()))
        .sum::<Result<usize, _>>()?;
    println!(
        "{} texts, {:.1} tokens/text on average, {rounds} rounds per mode",
        texts.len(),
        tokens as f64 / texts.len() as f64
    );

    let one_at_a_time = |texts: &[&str]| -> Result<(), minilm::ModelError> {
        for t in texts {
            std::hint::black_box(model.embed(t)?);
        }
        Ok(())
    };
    report("rust one-at-a-time", rounds, &texts, &one_at_a_time)?;
    for bs in [16usize, 32] {
        let batched = |texts: &[&str]| -> Result<(), minilm::ModelError> {
            for chunk in texts.chunks(bs) {
                std::hint::black_box(model.embed_batch(chunk)?);
            }
            Ok(())
        };
        report(&format!("rust batch={bs}"), rounds, &texts, &batched)?;
    }
    // The library must never start threads (it will run inside PostgreSQL
    // backends); on Linux, show the process still has exactly one.
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        println!("threads in this process: {}", tasks.count());
    }
    Ok(())
}

fn report(
    name: &str,
    rounds: usize,
    texts: &[&str],
    run: &dyn Fn(&[&str]) -> Result<(), minilm::ModelError>,
) -> Result<(), minilm::ModelError> {
    run(texts)?;
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        run(texts)?;
        rates.push(texts.len() as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{name:<22} median {:8.1} texts/s   best {:8.1} texts/s",
        rates[rates.len() / 2],
        rates[rates.len() - 1]
    );
    Ok(())
}
