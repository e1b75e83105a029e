//! The JSON case tables under `tests/cases/`, each run by a Rust suite and
//! by its Python twin: a table read by its file name, and one section of
//! it as the list of its cases. Included on its own, by path, by the suites
//! that read one (`crates/http/tests/http_fields.rs`,
//! `crates/native/tests/native_upstream_cases.rs`); no part of `common`.

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]

use serde_json::Value;

/// The case table `tests/cases/<file>`, parsed.
pub fn table(file: &str) -> Value {
    let path = format!("{}/../../tests/cases/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("the case table")).unwrap()
}

/// The cases of section `name` of `tests/cases/<file>`: an array, not empty.
pub fn cases(file: &str, name: &str) -> Vec<Value> {
    let cases = table(file)[name].as_array().expect(name).clone();
    assert!(!cases.is_empty(), "no {name} cases");
    cases
}
