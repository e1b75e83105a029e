//! Runs gunicorn's request-parser corpus (`../shared/conformance/
//! gunicorn-requests.json`, see its README) through the HTTP ring: every
//! case is fed whole, byte by byte and in random reads to a simulated
//! connection (head, body via `BodyDecoder`, next pipelined request), and
//! the parsed method, path, query, version, headers (names upper-cased, in
//! order) and body are compared with gunicorn's. `invalid` cases must be
//! refused (an error, or input that ends inside a request).
//!
//! Where we differ on purpose the case is listed in `DIFFERENT` with the
//! outcome RFC 9112/9110 requires and why; cases written for gunicorn
//! settings we do not have are in `SKIPPED`. A case on neither list that
//! disagrees fails the test, and so does a listed case that no longer
//! behaves as listed. If the corpus is absent, the test notes it and passes.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test's own summary and skip lines, shown with --nocapture"
)]

mod common;

use base64::Engine as _;
use common::{serve_all_ways, ConnEnd, Req};
use qiao_http::{Limits, ParseError, ParseError::*, Version};
use serde_json::Value;

/// Set to run the tests on purpose without `../shared` (the corpus absent).
const WITHOUT_SHARED: &str = "QIAO_WITHOUT_SHARED";

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/gunicorn-requests.json"
);

/// What we do instead of what gunicorn does: this many requests parsed (for
/// a `valid` case they must match the corpus' first ones), then this end.
struct Ours(usize, ConnEnd);

const fn refused(e: ParseError) -> Ours {
    Ours(0, ConnEnd::Error(e))
}

const NO_HOST: &str = "HTTP/1.1 request without Host: 400 (RFC 9112 §3.2)";
const CRLF_COUNTED: &str =
    "field line within our limit, which excludes the CRLF (limits.rs); gunicorn counts it";
const TRAILER: &str = "trailers are discarded, never merged into the head (RFC 9110 §6.5.2)";

#[rustfmt::skip]
const DIFFERENT: &[(&str, Ours, &str)] = &[
    ("valid/004.http", refused(MissingHost), NO_HOST),
    ("valid/005.http", refused(MissingHost), NO_HOST),
    ("valid/006.http", refused(MissingHost), NO_HOST),
    ("valid/007.http", refused(MissingHost), NO_HOST),
    ("valid/009.http", refused(MissingHost), NO_HOST),
    ("valid/010.http", refused(MissingHost), NO_HOST),
    ("valid/011.http", refused(MissingHost), NO_HOST),
    ("valid/012.http", refused(MissingHost), NO_HOST),
    ("valid/013.http", refused(MissingHost), NO_HOST),
    ("valid/014.http", refused(MissingHost), NO_HOST),
    ("valid/018.http", refused(MissingHost), NO_HOST),
    ("valid/021.http", refused(MissingHost), NO_HOST),
    ("valid/022.http", Ours(1, ConnEnd::Error(MissingHost)), "the second request is HTTP/1.1 without Host: 400 (RFC 9112 §3.2)"),
    ("valid/023.http", refused(MissingHost), NO_HOST),
    ("valid/025.http", refused(MissingHost), "HTTP/1.1 without Host (and gzip would be 501: we implement only chunked)"),
    ("valid/025_line.http", refused(MissingHost), "HTTP/1.1 without Host (and gzip would be 501: we implement only chunked)"),
    ("valid/029.http", refused(MissingHost), "HTTP/1.1 without Host (and identity would be 501: not a transfer coding)"),
    ("valid/030.http", refused(MissingHost), "HTTP/1.1 without Host (and identity would be 501: not a transfer coding)"),
    ("valid/031.http", refused(MissingHost), NO_HOST),
    ("valid/100.http", refused(MissingHost), NO_HOST),
    ("valid/099.http", Ours(0, ConnEnd::Incomplete), "Content-Length 17914 but 8599 body bytes in the corpus: we wait for the rest (RFC 9112 §6.3)"),
    ("valid/rfc9112_smuggle_gzip_chunked_01.http", refused(UnsupportedTransferCoding), "we implement no coding but chunked: 501 (RFC 9112 §6.1)"),
    ("valid/rfc9112_smuggle_te_identity_chunked_01.http", refused(UnsupportedTransferCoding), "identity is not a registered transfer coding: 501 (RFC 9112 §6.1)"),
    ("valid/rfc9112_target_absolute_userinfo_01.http", refused(BadTarget), "userinfo in an http(s) URI is to be treated as an error (RFC 9110 §4.2.4)"),
    ("valid/rfc9112_target_authority_connect_01.http", refused(MethodNotImplemented), "not a proxy: CONNECT is 501 (RFC 9110 §9.3.6)"),
    ("valid/rfc9112_target_authority_ipv6_01.http", refused(MethodNotImplemented), "not a proxy: CONNECT is 501 (RFC 9110 §9.3.6)"),
    ("invalid/006.http", Ours(1, ConnEnd::Closed), "4112-byte request line: our limit is 8190 (limits.rs), gunicorn's default 4094"),
    ("invalid/008.http", Ours(1, ConnEnd::Closed), CRLF_COUNTED),
    ("invalid/012.http", Ours(1, ConnEnd::Eof), CRLF_COUNTED),
    ("invalid/limit_header_default_01.http", Ours(1, ConnEnd::Closed), CRLF_COUNTED),
    ("invalid/041.http", Ours(1, ConnEnd::Eof), "two Content-Type fields: RFC 9110 §5.3 does not require refusing them; the app sees both"),
    ("invalid/rfc9112_smuggle_cl_list_form_01.http", Ours(1, ConnEnd::Eof), "a list of identical Content-Length values may be accepted (RFC 9110 §8.6)"),
    ("invalid/rfc9110_trailer_forbidden_cl_01.http", Ours(1, ConnEnd::Eof), TRAILER),
    ("invalid/rfc9110_trailer_forbidden_host_01.http", Ours(1, ConnEnd::Eof), TRAILER),
    ("invalid/rfc9110_trailer_forbidden_te_01.http", Ours(1, ConnEnd::Eof), TRAILER),
];

/// Cases for gunicorn settings with no equivalent here (limit settings are
/// mapped to `Limits` instead and run).
#[rustfmt::skip]
const SKIPPED: &[(&str, &str)] = &[
    ("valid/028.http", "strip_header_spaces: lenient mode, we always refuse space before colon"),
    ("valid/031compat.http", "permit_unconventional_http_method + casefold_http_method"),
    ("valid/031compat2.http", "permit_unconventional_http_method"),
    ("valid/040_compat.http", "header_map 'dangerous'"),
    ("valid/compat_obs_fold.http", "permit_obsolete_folding: we always refuse obs-fold"),
    ("valid/compat_obs_fold_huge.http", "permit_obsolete_folding: we always refuse obs-fold"),
    ("valid/pp_01.http", "proxy_protocol"),
    ("valid/pp_02.http", "proxy_protocol"),
    ("valid/pp_03.http", "proxy_protocol"),
    ("valid/pp_04.http", "proxy_protocol"),
    ("valid/pp_05.http", "proxy_protocol"),
    ("invalid/013.http", "permit_obsolete_folding"),
    ("invalid/019.http", "forwarded_allow_ips: X-Forwarded-* handling is not the HTTP ring's"),
    ("invalid/040.http", "header_map 'refuse' (underscore names are dropped later, by the WSGI environ)"),
    ("invalid/chunked_07.http", "header_map 'refuse' (underscore names are dropped later, by the WSGI environ)"),
    ("invalid/pp_01.http", "proxy_protocol"),
    ("invalid/pp_02.http", "proxy_protocol"),
    ("invalid/pp_03.http", "proxy_protocol"),
];

/// Maps gunicorn's limit settings onto `Limits`; `None` for other settings.
fn limits_for(settings: &serde_json::Map<String, Value>) -> Option<Limits> {
    let mut limits = Limits::default();
    for (key, value) in settings {
        let n: usize = value.as_str()?.parse().ok()?;
        match key.as_str() {
            "limit_request_line" => limits.request_line = n,
            "limit_request_fields" => limits.header_fields = n,
            // gunicorn: 0 means its default.
            "limit_request_field_size" if n > 0 => limits.field_size = n,
            "limit_request_field_size" => {}
            _ => return None,
        }
    }
    Some(limits)
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1 text"))
        .collect()
}

/// Why one parsed request differs from gunicorn's, if it does. The corpus
/// holds bytes as latin-1 text, so both sides are compared as bytes.
fn compare(ours: &Req, theirs: &Value) -> Result<(), String> {
    let h = &ours.head;
    let text = |v: &Value| latin1(v.as_str().unwrap());
    let version = match h.version {
        Version::Http10 => vec![1, 0],
        Version::Http11 => vec![1, 1],
    };
    let their_version: Vec<u64> = theirs["version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let their_headers: Vec<(Vec<u8>, Vec<u8>)> = theirs["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (text(&kv[0]), text(&kv[1])))
        .collect();
    // Names with `_` reach no app: the WSGI environ drops them (src/wsgi/
    // environ.rs), as gunicorn's default header_map 'drop' does here.
    let our_headers: Vec<(Vec<u8>, Vec<u8>)> = h
        .headers
        .iter()
        .filter(|(n, _)| !n.contains('_'))
        .map(|(n, v)| (n.to_ascii_uppercase().into_bytes(), v.clone().into_bytes()))
        .collect();
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let checks = [
        (
            "method",
            show(h.method.as_bytes()),
            show(&text(&theirs["method"])),
        ),
        (
            "path",
            show(h.path.as_bytes()),
            show(&text(&theirs["uri"]["path"])),
        ),
        (
            "query",
            show(h.query.as_bytes()),
            show(&text(&theirs["uri"]["query"])),
        ),
        (
            "version",
            format!("{version:?}"),
            format!("{their_version:?}"),
        ),
        (
            "headers",
            format!("{our_headers:?}"),
            format!("{their_headers:?}"),
        ),
        ("body", show(&ours.body), show(&text(&theirs["body"]))),
    ];
    match checks.iter().find(|(_, a, b)| a != b) {
        Some((what, a, b)) => Err(format!("{what}: ours {a}, gunicorn {b}")),
        None => Ok(()),
    }
}

/// Checks our outcome against what the corpus or `DIFFERENT` says.
fn judge(
    kind: &str,
    expect: &Value,
    listed: Option<&Ours>,
    reqs: &[Req],
    end: &ConnEnd,
) -> Result<(), String> {
    let clean = matches!(end, ConnEnd::Eof | ConnEnd::Closed);
    let theirs = expect.as_array().map_or(&[][..], Vec::as_slice);
    let matching = |n: usize| -> Result<(), String> {
        for (i, (ours, theirs)) in reqs.iter().zip(theirs).take(n).enumerate() {
            compare(ours, theirs).map_err(|e| format!("request {i}: {e}"))?;
        }
        Ok(())
    };
    match listed {
        Some(Ours(n, e)) if reqs.len() == *n && end == e => {
            matching(if kind == "valid" { *n } else { 0 })
        }
        Some(Ours(n, e)) => Err(format!(
            "listed as {n} requests then {e:?}, got {} then {end:?}",
            reqs.len()
        )),
        None if kind == "invalid" && clean => Err(format!(
            "accepted {} requests, gunicorn refuses: {expect}",
            reqs.len()
        )),
        None if kind == "invalid" => Ok(()),
        None if !clean => Err(format!("refused after {} requests: {end:?}", reqs.len())),
        None if reqs.len() != theirs.len() => Err(format!(
            "{} requests, gunicorn {}",
            reqs.len(),
            theirs.len()
        )),
        None => matching(reqs.len()),
    }
}

#[test]
fn gunicorn_corpus() {
    let Ok(text) = std::fs::read_to_string(CORPUS) else {
        // Absent, the corpus would pass unseen: fail, unless the run says
        // on purpose that it has no shared/ beside the repository.
        assert!(
            std::env::var_os(WITHOUT_SHARED).is_some(),
            "{CORPUS} is absent: the conformance corpus lives in ../shared \
             (set {WITHOUT_SHARED}=1 to run without it)"
        );
        eprintln!("SKIPPED: {CORPUS} is absent ({WITHOUT_SHARED} is set)");
        return;
    };
    let cases: Vec<Value> = serde_json::from_str(&text).expect("corpus is JSON");
    let (mut agreed, mut different, mut skipped, mut failures) = (0, 0, 0, Vec::new());
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        if SKIPPED.iter().any(|(n, _)| *n == name) {
            skipped += 1;
            continue;
        }
        let Some(limits) = limits_for(case["gunicorn_settings"].as_object().unwrap()) else {
            failures.push(format!(
                "{name}: settings {} neither mapped nor skipped",
                case["gunicorn_settings"]
            ));
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(case["raw_b64"].as_str().unwrap())
            .unwrap();
        let listed = DIFFERENT
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, o, _)| o);
        let result = std::panic::catch_unwind(|| serve_all_ways(&raw, &limits));
        let Ok((reqs, end)) = result else {
            failures.push(format!("{name}: feeding modes disagree (see panic above)"));
            continue;
        };
        match judge(kind, &case["expect"], listed, &reqs, &end) {
            Ok(()) if listed.is_some() => different += 1,
            Ok(()) => agreed += 1,
            Err(why) => failures.push(format!("{name} ({kind}): {why}")),
        }
    }
    for (name, _, _) in DIFFERENT {
        assert!(
            cases.iter().any(|c| c["name"] == *name),
            "{name} is listed but not in the corpus"
        );
    }
    println!(
        "gunicorn corpus: {} cases: {agreed} agree, {different} differ as listed, {skipped} skipped (gunicorn settings), {} failed",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} cases disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
