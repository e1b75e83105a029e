//! Helpers shared by the fuzz targets (included with `#[path]`, not a target).

#![allow(dead_code)]

use std::ops::Range;

use qiao_http::{Limits, RequestHead};

/// Picks a `Limits` variant from one input byte (and a parameter byte), so
/// every target also explores the limit checks, not only the defaults:
/// the default limits, tiny limits (the 414/431 paths fire on short inputs),
/// more than 128 header fields (the heap-allocated header array) and a
/// small `max_body` (413 on Content-Length and on chunked totals).
pub fn limits(selector: u8, param: u8) -> Limits {
    let p = usize::from(param);
    match selector % 4 {
        0 => Limits::default(),
        1 => Limits {
            request_line: 1 + p % 64,
            header_fields: p % 8,
            field_size: 1 + (p * 7) % 96,
            max_body: Some(u64::from(param) % 32),
        },
        2 => Limits {
            request_line: 256,
            header_fields: 129 + p,
            field_size: 512,
            max_body: None,
        },
        _ => Limits {
            max_body: Some(u64::from(param)),
            ..Limits::default()
        },
    }
}

/// A small deterministic PRNG (xorshift) seeded from the input, for split points.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: &[u8]) -> Rng {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for &b in seed {
            s = (s ^ u64::from(b)).wrapping_mul(0x100_0000_01B3);
        }
        Rng(s | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..=n`.
    pub fn upto(&mut self, n: usize) -> usize {
        (self.next() % (n as u64 + 1)) as usize
    }
}

fn check_range(what: &str, r: &Range<usize>, n: usize) {
    assert!(
        r.start <= r.end && r.end <= n,
        "{what} range {r:?} outside the head (0..{n})"
    );
}

/// Every range a complete head reports lies within `buf[..n]`.
pub fn check_head_ranges(head: &RequestHead, n: usize, buf_len: usize) {
    assert!(n <= buf_len, "Complete({n}) beyond the input ({buf_len} bytes)");
    assert!(n > 0, "Complete(0)");
    assert_eq!(head.head_len, n, "head_len differs from Complete(n)");
    check_range("method", &head.method, n);
    check_range("target", &head.target, n);
    check_range("path", &head.path, n);
    check_range("query", &head.query, n);
    if let Some(a) = &head.authority {
        check_range("authority", a, n);
    }
    if let Some(h) = &head.host {
        check_range("host", h, n);
    }
    for (name, value) in &head.headers {
        check_range("header name", name, n);
        check_range("header value", value, n);
    }
    // The path and query lie within the target.
    assert!(
        head.path.start >= head.target.start && head.path.end <= head.target.end,
        "path {:?} outside target {:?}",
        head.path,
        head.target
    );
    assert!(
        head.query.start >= head.target.start && head.query.end <= head.target.end,
        "query {:?} outside target {:?}",
        head.query,
        head.target
    );
}
