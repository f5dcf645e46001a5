//! The BERT encoder forward pass.
//!
//! **Packing.** Texts of a batch are stacked into one matrix of
//! `total_tokens` tokens, so every dense layer is a single gemm over all real
//! tokens of the batch, and attention runs per text over its own tokens only.
//! For the real tokens that is exactly what padding plus an attention mask
//! computes — padded rows and masked scores never reach mean pooling — but no
//! time is spent on pad tokens. Position ids restart at 0 for every text and
//! token type ids are all 0, as for single sentences in sentence-transformers.
//!
//! **Layout.** Activations are *feature-major*: a `[tokens × features]`
//! matrix stored column-major, i.e. feature `f` of token `t` at
//! `f * tokens + t`. With that layout a PyTorch `Linear` weight `W[out, in]`,
//! read in place from the memory map, is already the unit-row-stride
//! right-hand operand `Wᵀ` that gemm consumes without repacking. With
//! token-major activations gemm repacks the whole weight matrix with a
//! strided scalar copy on every call, which took a third of the run time
//! (single-text throughput was about 15 % lower).

use crate::config::BertConfig;
use crate::ops::{self, Layout};
use crate::weights::Weights;

/// Final hidden states, feature-major `[hidden][tokens]`, texts' tokens in
/// input order.
pub(crate) struct Hidden {
    pub data: Vec<f32>,
    pub tokens: usize,
}

/// Buffers reused by every layer of one forward call (allocated once per
/// call, not per layer). All `[features][tokens]` matrices are feature-major.
struct Scratch {
    /// Hidden states `[h][t]`, input and output of each layer.
    x: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Attention context `[h][t]`.
    ctx: Vec<f32>,
    /// Hidden state after the attention block `[h][t]`.
    attn: Vec<f32>,
    /// Feed-forward activations `[intermediate][t]`.
    inter: Vec<f32>,
    /// One head's attention probabilities for the longest text: for each
    /// query, its `n` key scores contiguously.
    scores: Vec<f32>,
    /// LayerNorm statistics, `2 * t`.
    stats: Vec<f32>,
}

/// Runs the encoder over already-validated token id sequences (each
/// non-empty, at most `max_position_embeddings` long, ids inside the
/// vocabulary).
pub(crate) fn encode(cfg: &BertConfig, w: &Weights, seqs: &[&[u32]]) -> Hidden {
    let h = cfg.hidden_size;
    let t: usize = seqs.iter().map(|s| s.len()).sum();
    let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    if t == 0 {
        return Hidden {
            data: Vec::new(),
            tokens: 0,
        };
    }
    let mut s = Scratch {
        x: vec![0.0; t * h],
        q: vec![0.0; t * h],
        k: vec![0.0; t * h],
        v: vec![0.0; t * h],
        ctx: vec![0.0; t * h],
        attn: vec![0.0; t * h],
        inter: vec![0.0; t * cfg.intermediate_size],
        scores: vec![0.0; longest * longest],
        stats: vec![0.0; 2 * t],
    };
    embed_tokens(cfg, w, seqs, &mut s);
    for l in 0..w.num_layers() {
        layer(cfg, w, l, seqs, &mut s);
    }
    Hidden {
        data: s.x,
        tokens: t,
    }
}

/// Word + position + token-type(0) embeddings, then LayerNorm.
fn embed_tokens(cfg: &BertConfig, w: &Weights, seqs: &[&[u32]], s: &mut Scratch) {
    let h = cfg.hidden_size;
    let t = s.x.len() / h;
    let e = w.embeddings();
    let type0 = &e.token_type[..h];
    let mut col = 0;
    for seq in seqs {
        for (pos, &id) in seq.iter().enumerate() {
            let id = id as usize;
            let word = &e.word[id * h..(id + 1) * h];
            let position = &e.position[pos * h..(pos + 1) * h];
            for (f, ((a, b), c)) in word.iter().zip(position).zip(type0).enumerate() {
                s.x[f * t + col] = a + b + c;
            }
            col += 1;
        }
    }
    ops::layer_norm(&mut s.x, e.ln_g, e.ln_b, cfg.layer_norm_eps, &mut s.stats);
}

/// `y = (accumulate ? y : 0) + x · Wᵀ` for feature-major `x` `[in][t]` and
/// `y` `[out][t]`, with `W` the PyTorch weight `[out, in]`.
fn linear(t: usize, x: &[f32], w: &[f32], inputs: usize, outputs: usize, y: &mut [f32]) {
    ops::gemm(
        y,
        Layout::col_major(t, outputs, t),
        true,
        x,
        Layout::col_major(t, inputs, t),
        w,
        // Wᵀ[i, o] = W[o * inputs + i]
        Layout::col_major(inputs, outputs, inputs),
        1.0,
    );
}

/// One post-LayerNorm BERT layer:
/// `a = LN(x + Attn(x))`, `x = LN(a + W2·gelu(W1·a))`.
fn layer(cfg: &BertConfig, w: &Weights, l: usize, seqs: &[&[u32]], s: &mut Scratch) {
    let (h, inter) = (cfg.hidden_size, cfg.intermediate_size);
    let t = s.x.len() / h;
    let eps = cfg.layer_norm_eps;
    let p = w.layer(l);

    for (dst, wt, b) in [
        (&mut s.q, p.query_w, p.query_b),
        (&mut s.k, p.key_w, p.key_b),
        (&mut s.v, p.value_w, p.value_b),
    ] {
        ops::fill_bias(dst, b);
        linear(t, &s.x, wt, h, h, dst);
    }

    attention(cfg, seqs, s);

    ops::add_bias(&mut s.attn, &s.x, p.attn_out_b);
    linear(t, &s.ctx, p.attn_out_w, h, h, &mut s.attn);
    ops::layer_norm(&mut s.attn, p.attn_ln_g, p.attn_ln_b, eps, &mut s.stats);

    ops::fill_bias(&mut s.inter, p.inter_b);
    linear(t, &s.attn, p.inter_w, h, inter, &mut s.inter);
    ops::gelu(&mut s.inter);

    ops::add_bias(&mut s.x, &s.attn, p.out_b);
    linear(t, &s.inter, p.out_w, inter, h, &mut s.x);
    ops::layer_norm(&mut s.x, p.out_ln_g, p.out_ln_b, eps, &mut s.stats);
}

/// Scaled dot-product self-attention of every head, each text attending
/// only to its own tokens; writes `s.ctx`.
///
/// For a text of `n` tokens starting at token `start`, head `hd` occupies
/// features `hd·dh .. (hd+1)·dh`, so its `Q`, `K`, `V` are `[n × dh]`
/// column-major views with leading dimension `t` at offset
/// `hd·dh·t + start`.
fn attention(cfg: &BertConfig, seqs: &[&[u32]], s: &mut Scratch) {
    let h = cfg.hidden_size;
    let t = s.x.len() / h;
    let dh = cfg.head_dim();
    let scale = 1.0 / (dh as f32).sqrt();
    let mut start = 0;
    for seq in seqs {
        let n = seq.len();
        let scores = &mut s.scores[..n * n];
        let head = Layout::col_major(n, dh, t);
        for hd in 0..cfg.num_attention_heads {
            let off = hd * dh * t + start;
            // Sᵀ = K·Qᵀ stored column-major: query i's n key scores are
            // contiguous at i·n, ready for a row-wise softmax.
            ops::gemm(
                scores,
                Layout::col_major(n, n, n),
                false,
                &s.k[off..],
                head,
                &s.q[off..],
                Layout::row_major(dh, n, t),
                scale,
            );
            ops::softmax_rows(scores, n);
            // ctx = P·V with P[i, j] = scores[i·n + j].
            ops::gemm(
                &mut s.ctx[off..],
                head,
                false,
                scores,
                Layout::row_major(n, n, n),
                &s.v[off..],
                head,
                1.0,
            );
        }
        start += n;
    }
}
