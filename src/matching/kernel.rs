//! Batch scoring: every sponsor and event compiled once into one [`World`], embeddings
//! normalized once into row-major ndarray matrices, and pairs scored block by block so a
//! block of sponsor embeddings stays in cache while a block of events streams past it.
//! Each pair goes through [`evaluate`], the same function the per-pair path uses.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use ndarray::Array2;
use serde_json::Value;

use super::explain::breakdown;
use super::model::{EventInput, MarketContext, SponsorInput, Weights};
use super::score::{evaluate, unit, CompiledEvent, CompiledSponsor, PairEval, World};

type Describe =
    fn(&World, &CompiledSponsor, &CompiledEvent, &PairEval, &Weights, bool, bool) -> Value;

fn best_first(evals: Vec<PairEval>) -> Vec<(usize, f64)> {
    let mut v: Vec<(usize, f64)> = evals
        .iter()
        .enumerate()
        .map(|(i, ev)| (i, ev.score))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Sponsors per block: 64 rows of 384 f32 = 96 KiB, which stays in L2.
pub const SPONSOR_BLOCK: usize = 64;
/// Events per block.
pub const EVENT_BLOCK: usize = 256;

/// The sponsor half of a marketplace, compiled: it can be kept and paired with different
/// events (one event against every sponsor, call after call).
pub struct SponsorSide {
    world: World,
    ids: Rc<Vec<[u8; 16]>>,
    sponsors: Rc<Vec<CompiledSponsor>>,
    emb: Rc<Array2<f32>>,
    has_emb: Rc<Vec<bool>>,
    /// Embedding dimension of the sponsors (0 when none has one).
    dims: usize,
}

impl SponsorSide {
    pub fn build(ctx: &MarketContext, sponsors: &[SponsorInput]) -> SponsorSide {
        let mut world = World::new(ctx);
        let compiled: Vec<CompiledSponsor> =
            sponsors.iter().map(|s| world.compile_sponsor(s)).collect();
        let dims = embedding_dims(sponsors, &[]);
        let (emb, has_emb) = embed_rows(
            sponsors.iter().map(|s| s.embedding.as_ref()),
            sponsors.len(),
            dims,
        );
        SponsorSide {
            world,
            ids: Rc::new(sponsors.iter().map(|s| s.id).collect()),
            sponsors: Rc::new(compiled),
            emb: Rc::new(emb),
            has_emb: Rc::new(has_emb),
            dims,
        }
    }

    pub fn len(&self) -> usize {
        self.sponsors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sponsors.is_empty()
    }
}

pub struct Marketplace {
    pub world: World,
    pub sponsor_ids: Rc<Vec<[u8; 16]>>,
    pub sponsors: Rc<Vec<CompiledSponsor>>,
    s_emb: Rc<Array2<f32>>,
    s_has_emb: Rc<Vec<bool>>,
    pub event_ids: Vec<[u8; 16]>,
    pub events: Vec<CompiledEvent>,
    e_emb: Array2<f32>,
    e_has_emb: Vec<bool>,
}

/// The embedding dimension shared by the inputs (the first one seen); vectors of another
/// dimension are treated as missing.
fn embedding_dims(sponsors: &[SponsorInput], events: &[EventInput]) -> usize {
    sponsors
        .iter()
        .filter_map(|s| s.embedding.as_ref())
        .chain(events.iter().filter_map(|e| e.embedding.as_ref()))
        .map(Vec::len)
        .next()
        .unwrap_or(0)
}

fn embed_rows<'a>(
    rows: impl Iterator<Item = Option<&'a Vec<f32>>>,
    n: usize,
    dims: usize,
) -> (Array2<f32>, Vec<bool>) {
    let mut m = Array2::<f32>::zeros((n, dims));
    let mut has = vec![false; n];
    for (i, v) in rows.enumerate() {
        if let Some(u) = v
            .filter(|v| v.len() == dims && dims > 0)
            .and_then(|v| unit(v))
        {
            m.row_mut(i)
                .as_slice_mut()
                .expect("row-major")
                .copy_from_slice(&u);
            has[i] = true;
        }
    }
    (m, has)
}

#[derive(Clone, Copy, PartialEq)]
struct Ranked(f64, usize);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    // Higher score first; on a tie the lower index ranks higher.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

/// Keeps the `k` best (score, index) pairs seen.
struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    #[inline]
    fn offer(&mut self, score: f64, idx: usize) {
        if self.k == 0 {
            return;
        }
        let r = Ranked(score, idx);
        if self.heap.len() < self.k {
            self.heap.push(Reverse(r));
        } else if let Some(Reverse(worst)) = self.heap.peek() {
            if r > *worst {
                self.heap.pop();
                self.heap.push(Reverse(r));
            }
        }
    }

    fn into_sorted(self) -> Vec<(usize, f64)> {
        let mut v: Vec<Ranked> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|Ranked(s, i)| (i, s)).collect()
    }
}

/// The best matches of every event and of every sponsor.
pub struct TopMatches {
    /// Per event: (sponsor index, score), best first.
    pub per_event: Vec<Vec<(usize, f64)>>,
    /// Per sponsor: (event index, score), best first.
    pub per_sponsor: Vec<Vec<(usize, f64)>>,
    pub pairs_scored: u64,
}

impl Marketplace {
    pub fn build(
        ctx: &MarketContext,
        sponsors: &[SponsorInput],
        events: &[EventInput],
    ) -> Marketplace {
        Marketplace::with_sponsor_side(&SponsorSide::build(ctx, sponsors), events)
    }

    /// Pairs compiled sponsors with events. The sponsors were compiled first, as they must be:
    /// events' geo keys are matched against the regions sponsors target.
    pub fn with_sponsor_side(side: &SponsorSide, events: &[EventInput]) -> Marketplace {
        let mut world = side.world.clone();
        let compiled_events: Vec<CompiledEvent> =
            events.iter().map(|e| world.compile_event(e)).collect();
        let dims = if side.dims > 0 {
            side.dims
        } else {
            embedding_dims(&[], events)
        };
        let (s_emb, s_has_emb) = if side.dims == dims {
            (Rc::clone(&side.emb), Rc::clone(&side.has_emb))
        } else {
            // no sponsor has an embedding: a zero matrix of the events' width
            (
                Rc::new(Array2::<f32>::zeros((side.len(), dims))),
                Rc::new(vec![false; side.len()]),
            )
        };
        let (e_emb, e_has_emb) = embed_rows(
            events.iter().map(|e| e.embedding.as_ref()),
            events.len(),
            dims,
        );
        Marketplace {
            world,
            sponsor_ids: Rc::clone(&side.ids),
            sponsors: Rc::clone(&side.sponsors),
            s_emb,
            s_has_emb,
            event_ids: events.iter().map(|e| e.id).collect(),
            events: compiled_events,
            e_emb,
            e_has_emb,
        }
    }

    fn s_vec(&self, i: usize) -> Option<&[f32]> {
        self.s_has_emb[i].then(|| self.s_emb.row(i).to_slice().expect("row-major"))
    }

    fn e_vec(&self, j: usize) -> Option<&[f32]> {
        self.e_has_emb[j].then(|| self.e_emb.row(j).to_slice().expect("row-major"))
    }

    #[inline]
    pub fn eval(&self, si: usize, ei: usize, w: &Weights) -> PairEval {
        evaluate(
            &self.world,
            &self.sponsors[si],
            self.s_vec(si),
            &self.events[ei],
            self.e_vec(ei),
            w,
        )
    }

    /// One pair scored and described by `describe` (the full or the compact breakdown).
    fn described(
        &self,
        si: usize,
        ei: usize,
        w: &Weights,
        describe: Describe,
    ) -> (PairEval, Value) {
        let ev = self.eval(si, ei, w);
        let b = describe(
            &self.world,
            &self.sponsors[si],
            &self.events[ei],
            &ev,
            w,
            self.s_has_emb[si],
            self.e_has_emb[ei],
        );
        (ev, b)
    }

    /// The full breakdown of one pair.
    pub fn explain(&self, si: usize, ei: usize, w: &Weights) -> (PairEval, Value) {
        self.described(si, ei, w, breakdown)
    }

    /// The compact breakdown stored with a match.
    pub fn compact(&self, si: usize, ei: usize, w: &Weights) -> (PairEval, Value) {
        self.described(si, ei, w, super::explain::compact)
    }

    /// Every sponsor for one event, best first (ties: lower position first).
    pub fn rank_sponsors(&self, ei: usize, w: &Weights) -> Vec<(usize, f64)> {
        best_first(self.score_event(ei, w))
    }

    /// Every event for one sponsor, best first (ties: lower position first).
    pub fn rank_events(&self, si: usize, w: &Weights) -> Vec<(usize, f64)> {
        best_first(self.score_sponsor(si, w))
    }

    /// Position of every sponsor id and of every event id.
    pub fn positions(&self) -> (HashMap<[u8; 16], usize>, HashMap<[u8; 16], usize>) {
        let index = |ids: &[[u8; 16]]| ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        (index(&self.sponsor_ids), index(&self.event_ids))
    }

    /// One event against every sponsor, in sponsor order.
    pub fn score_event(&self, ei: usize, w: &Weights) -> Vec<PairEval> {
        (0..self.sponsors.len())
            .map(|si| self.eval(si, ei, w))
            .collect()
    }

    /// One sponsor against every event, in event order.
    pub fn score_sponsor(&self, si: usize, w: &Weights) -> Vec<PairEval> {
        (0..self.events.len())
            .map(|ei| self.eval(si, ei, w))
            .collect()
    }

    /// Every pair, in cache-sized blocks, keeping the `k` best per event and per sponsor.
    pub fn top_matches(&self, k: usize, w: &Weights) -> TopMatches {
        self.top_matches_impl(k, w)
    }

    #[inline(always)]
    fn top_matches_impl(&self, k: usize, w: &Weights) -> TopMatches {
        let (ns, ne) = (self.sponsors.len(), self.events.len());
        let mut per_event: Vec<TopK> = (0..ne).map(|_| TopK::new(k)).collect();
        let mut per_sponsor: Vec<TopK> = (0..ns).map(|_| TopK::new(k)).collect();
        let mut pairs = 0u64;
        for s0 in (0..ns).step_by(SPONSOR_BLOCK) {
            let s1 = (s0 + SPONSOR_BLOCK).min(ns);
            for e0 in (0..ne).step_by(EVENT_BLOCK) {
                let e1 = (e0 + EVENT_BLOCK).min(ne);
                for ei in e0..e1 {
                    let event = &self.events[ei];
                    let e_vec = self.e_vec(ei);
                    let top_e = &mut per_event[ei];
                    for si in s0..s1 {
                        let score = evaluate(
                            &self.world,
                            &self.sponsors[si],
                            self.s_vec(si),
                            event,
                            e_vec,
                            w,
                        )
                        .score;
                        top_e.offer(score, si);
                        per_sponsor[si].offer(score, ei);
                    }
                }
                pairs += ((s1 - s0) * (e1 - e0)) as u64;
            }
        }
        TopMatches {
            per_event: per_event.into_iter().map(TopK::into_sorted).collect(),
            per_sponsor: per_sponsor.into_iter().map(TopK::into_sorted).collect(),
            pairs_scored: pairs,
        }
    }
}
