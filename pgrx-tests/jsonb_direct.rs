//! `api::jsonb::Jsonb` builds jsonb without a text round trip: it must give exactly what
//! `jsonb_in` gives for serde_json's text of the same value.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::json;

    use crate::api::jsonb::Jsonb;

    /// `jsonb_in(text)` and the direct value, compared in SQL (equal as jsonb, and printed alike).
    fn same_as_text_round_trip(v: serde_json::Value) {
        let (eq, direct, via_text) = Spi::get_three_with_args::<bool, String, String>(
            "SELECT $1 = $2 AND $1::text = $2::text, $1::text, $2::text",
            &[Jsonb(v.clone()).into(), JsonB(v.clone()).into()],
        )
        .unwrap();
        assert_eq!(eq, Some(true), "{v}: direct {direct:?} vs text {via_text:?}");
    }

    #[pg_test]
    fn a_match_explanation_converts_exactly() {
        same_as_text_round_trip(json!({
            "score": 0.72341, "budget_fit": 1.0, "weights_version": 3, "missing": [],
            "factors": {"geo_fit": {"value": 0.5, "inputs": {"rule": "same_country", "event_city": "Austin",
                                                              "sponsor_regions": ["austin", "global"]}}},
            "temporal": {"multiplier": 1, "days_since_end": null, "starts_in_days": -0.000123},
            "objectives_similarity_neutral": true,
        }));
    }

    #[pg_test]
    fn numbers_strings_and_nesting_convert_exactly() {
        for v in [
            json!({"a": 0.1, "b": 1e-7, "c": 123456789012345i64, "d": -0.5, "e": 1.7976931348623157e308,
                   "f": 5e-324, "g": u64::MAX, "h": -9223372036854775808i64, "i": 0, "j": 2.5e20}),
            json!({"ü": "naïve — 東京 🎪", "quote\"d": "back\\slash\nnew line\ttab", "": ""}),
            json!({"bbb": 1, "a": 2, "cc": 3, "aa": {"z": [1, [2, [3, {}]], {"k": []}]}}),
            json!([1, "two", null, false, {"x": true}]),
            json!({}),
            json!([]),
            json!("a lone string"),
            json!(42),
            json!(null),
        ] {
            same_as_text_round_trip(v);
        }
    }
}
