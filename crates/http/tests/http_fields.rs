//! The engine's request-field rules (`qiao_http::fields`, and the order
//! of the preconditions, `qiao_http::conditional`) against the one
//! table of cases the portable middleware's `_http.py` runs too
//! (`tests/cases/http_fields.json`; its Python twin is
//! `tests/e2e/test_http_fields.py`): two implementations, one expected
//! answer per case.

use qiao_http::conditional::{evaluate_preconditions, Conditions, Method, Verdict};
use qiao_http::fields::{
    choose_coding, etag_matches, http_date, parse_http_date, parse_range, Range,
};
use serde_json::Value;

#[path = "common/json_table.rs"]
mod json_table;

fn cases(name: &str) -> Vec<Value> {
    json_table::cases("http_fields.json", name)
}

fn bytes(v: &Value) -> Option<&[u8]> {
    v.as_str().map(str::as_bytes)
}

#[test]
fn coding_negotiation() {
    for c in cases("choose_coding") {
        let available: Vec<&str> = c["available"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let got = choose_coding(bytes(&c["accept"]), &available);
        assert_eq!(got, c["want"].as_str(), "{c}");
    }
}

#[test]
fn http_dates() {
    for c in cases("parse_http_date") {
        assert_eq!(
            parse_http_date(bytes(&c["value"])),
            c["want"].as_i64(),
            "{c}"
        );
    }
    for c in cases("http_date") {
        assert_eq!(
            http_date(c["secs"].as_i64().unwrap()),
            c["want"].as_str().unwrap(),
            "{c}"
        );
    }
}

#[test]
fn entity_tags() {
    for c in cases("etag_matches") {
        let got = etag_matches(
            bytes(&c["header"]),
            c["etag"].as_str().unwrap(),
            c["weak"].as_bool().unwrap(),
        );
        assert_eq!(got, c["want"].as_bool().unwrap(), "{c}");
    }
}

#[test]
fn byte_ranges() {
    for c in cases("parse_range") {
        let want = match &c["want"] {
            Value::Null => Range::Whole,
            Value::String(s) if s == "unsatisfiable" => Range::Unsatisfiable,
            Value::Array(a) => Range::Bytes(a[0].as_u64().unwrap(), a[1].as_u64().unwrap()),
            other => panic!("bad want {other}"),
        };
        assert_eq!(
            parse_range(bytes(&c["value"]), c["size"].as_u64().unwrap()),
            want,
            "{c}"
        );
    }
}

#[test]
fn precondition_sequence() {
    for c in cases("preconditions") {
        let field = |name: &str| bytes(&c["headers"][name]);
        let conditions = Conditions {
            if_match: field("If-Match"),
            if_none_match: field("If-None-Match"),
            if_modified_since: field("If-Modified-Since"),
            if_unmodified_since: field("If-Unmodified-Since"),
            range: field("Range"),
            if_range: field("If-Range"),
        };
        let want = match &c["want"] {
            Value::String(s) if s == "full" => Verdict::Full,
            Value::String(s) if s == "not_modified" => Verdict::NotModified,
            Value::String(s) if s == "precondition_failed" => Verdict::PreconditionFailed,
            Value::String(s) if s == "unsatisfiable" => Verdict::RangeNotSatisfiable,
            Value::Array(a) => Verdict::Partial(a[0].as_u64().unwrap(), a[1].as_u64().unwrap()),
            other => panic!("bad want {other}"),
        };
        let got = evaluate_preconditions(
            Method::of(c["method"].as_str().unwrap().as_bytes()),
            &conditions,
            c["etag"].as_str(),
            c["mtime"].as_i64().unwrap(),
            c["size"].as_u64().unwrap(),
        );
        assert_eq!(got, want, "{c}");
    }
}
