//! `semantic_sponsor_event_match`: three different signals of how a sponsor's intent meets
//! an event, each in [0,1] or unknown.
//! - semantic_similarity: cosine of the objectives and description embeddings (meaning).
//! - objectives_alignment: the share of the sponsor's objective words that the event's own
//!   text uses (explicit wording, independent of any model).
//! - description_alignment: cosine of the event's description embedding with the centroid of
//!   the descriptions of events the sponsor already sponsored (track record).
//!
//! `match_score` is their weighted mean over the known ones (0.5 / 0.25 / 0.25).

use std::collections::HashSet;

use super::score::weighted_mean_of_known;

pub const SEMANTIC_WEIGHT: f64 = 0.5;
pub const OBJECTIVES_WEIGHT: f64 = 0.25;
pub const DESCRIPTION_WEIGHT: f64 = 0.25;

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "with", "our", "your", "their", "that", "this", "from", "into", "who",
    "are", "was", "were", "will", "have", "has", "not", "but", "all", "any", "can", "more", "than",
    "them", "they", "its", "out", "also", "just", "like", "want", "wants", "through", "at", "of",
    "to", "in", "on", "we", "us", "an", "a", "is", "be", "as", "by", "or", "it", "at", "events",
    "event", "people",
];

/// Content words of a text: lower-cased, stopwords and words under three letters dropped,
/// plural and -ing endings folded so "festivals" meets "festival".
pub fn content_words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .map(|w| fold(&w))
        .collect()
}

fn fold(w: &str) -> String {
    for suffix in ["ing", "es", "s"] {
        if let Some(stem) = w.strip_suffix(suffix) {
            if stem.chars().count() >= 3 {
                return stem.to_string();
            }
        }
    }
    w.to_string()
}

/// Share of the objective words found in the event text; unknown without objective words.
pub fn objectives_alignment(objectives: &str, event_text: &str) -> Option<f64> {
    let o = content_words(objectives);
    if o.is_empty() {
        return None;
    }
    let e = content_words(event_text);
    Some(o.iter().filter(|w| e.contains(*w)).count() as f64 / o.len() as f64)
}

/// A cosine mapped to a [0,1] signal (opposite meanings count as no alignment).
pub fn cosine_signal(cos: Option<f64>) -> Option<f64> {
    cos.map(|c| c.clamp(0.0, 1.0))
}

pub fn match_score(
    semantic: Option<f64>,
    objectives: Option<f64>,
    description: Option<f64>,
) -> Option<f64> {
    weighted_mean_of_known(&[
        (semantic, SEMANTIC_WEIGHT),
        (objectives, OBJECTIVES_WEIGHT),
        (description, DESCRIPTION_WEIGHT),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_drop_stopwords_and_fold_endings() {
        let w = content_words("Sampling our IPAs at outdoor music festivals, and the festival!");
        for expected in ["sampl", "ipa", "outdoor", "music", "festival"] {
            assert!(w.contains(expected), "{expected} in {w:?}");
        }
        assert!(!w.contains("and") && !w.contains("our") && !w.contains("the"));
    }

    #[test]
    fn objectives_alignment_is_the_share_of_objective_words_the_event_uses() {
        // objective words: grow, awareness, craft, beer, outdoor, music, festival -> 3 of 7 used
        let a = objectives_alignment(
            "Grow awareness of craft beer at outdoor music festivals",
            "An outdoor festival of live music by the lake",
        )
        .unwrap();
        assert!((a - 3.0 / 7.0).abs() < 1e-12, "{a}");
        assert_eq!(objectives_alignment("the and of", "anything"), None);
        assert_eq!(
            objectives_alignment("craft beer", "a jazz night").unwrap(),
            0.0
        );
    }

    #[test]
    fn the_match_score_averages_only_the_known_signals() {
        assert_eq!(
            match_score(Some(0.8), Some(0.4), Some(0.2)),
            Some(0.8 * 0.5 + 0.4 * 0.25 + 0.2 * 0.25)
        );
        assert_eq!(match_score(None, Some(0.4), None), Some(0.4));
        assert_eq!(match_score(None, None, None), None);
        assert_eq!(cosine_signal(Some(-0.3)), Some(0.0));
    }
}
