//! `head_parser`: arbitrary bytes into `qiao_http::parse_head`.
//!
//! Input layout: byte 0 picks a `Limits` variant (see `common::limits`),
//! byte 1 its parameter, byte 2 seeds the split point; the rest is the
//! buffer. Checks:
//! - `parse_head` never panics, whatever the bytes and limits;
//! - `Complete(n)` has `0 < n <= buf.len()`, `head_len == n`, and every
//!   range of the head (method, target, path, query, authority, host, each
//!   header name and value) lies within `buf[..n]`;
//! - incremental feeding agrees with feeding whole: parsing a prefix
//!   `buf[..k]` (k derived from the data) gives `Partial` or the very same
//!   error as the whole buffer (the same `Complete(n)` when `k >= n`), and
//!   then parsing the whole buffer again with the `RequestHead` reused
//!   from the prefix attempt (as a connection does) gives the same result
//!   and the same head as a fresh parse.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qiao_http::{parse_head, ParseError, RequestHead, Status};

#[path = "common/mod.rs"]
mod common;

fn parse(buf: &[u8], limits: &qiao_http::Limits, head: &mut RequestHead) -> Result<Status<usize>, ParseError> {
    let r = parse_head(buf, limits, head);
    if let Ok(Status::Complete(n)) = r {
        common::check_head_ranges(head, n, buf.len());
    }
    r
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let limits = common::limits(data[0], data[1]);
    let seed = data[2];
    let buf = &data[3..];

    let mut whole_head = RequestHead::default();
    let whole = parse(buf, &limits, &mut whole_head);

    // Split point: spread over the buffer, with some weight on the ends.
    let k = match seed % 8 {
        0 => 0,
        1 => buf.len().saturating_sub(1),
        _ => common::Rng::new(data).upto(buf.len()),
    };
    let mut head = RequestHead::default();
    let first = parse(&buf[..k], &limits, &mut head);
    match (&whole, &first) {
        (_, Ok(Status::Partial)) => {}
        (Ok(Status::Complete(n)), Ok(Status::Complete(m))) => {
            assert!(k >= *n && m == n, "prefix of {k} bytes gave Complete({m}), whole gave Complete({n})");
        }
        // What the client sees must not depend on the split: the status.
        // (Which 400 message is chosen may: both refuse and close.)
        (Err(e), Err(f)) => assert_eq!(e.status(), f.status(), "prefix of {k} bytes gave another status than the whole ({f:?} vs {e:?})"),
        _ => panic!("prefix of {k} bytes gave {first:?}, the whole buffer {whole:?}"),
    }

    // Then the whole buffer, reusing the head the prefix attempt wrote into.
    let second = parse(buf, &limits, &mut head);
    assert_eq!(second, whole, "whole after a prefix differs from whole at once");
    if let Ok(Status::Complete(_)) = whole {
        assert_eq!(
            format!("{head:?}"),
            format!("{whole_head:?}"),
            "a reused RequestHead differs from a fresh one"
        );
    }
});
