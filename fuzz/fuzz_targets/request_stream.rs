//! `request_stream`: a connection-like loop over arbitrary bytes.
//!
//! Input layout: byte 0 picks a `Limits` variant (see `common::limits`),
//! byte 1 its parameter; the rest is what a client sent on one connection.
//! Up to 16 times: parse a head with `parse_head`, build a `BodyDecoder`
//! with the framing the head announced (and the limits' `max_body`),
//! decode the body, then continue with the bytes after it as the next
//! pipelined request (whatever the head's keep-alive, to reach more
//! states). Stops at the first `Partial`, error, or body still needing
//! more. Checks:
//! - nothing panics, and every loop is bounded (a decode call that makes
//!   no progress is a failure, not a hang);
//! - complete heads have their ranges inside the head (`common`);
//! - total bytes consumed never exceed the input length;
//! - a `Content-Length` body that ends yields exactly that many bytes;
//!   no body yields more than `max_body`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qiao::http::{parse_head, BodyDecoder, Decoded, Framing, RequestHead, Status};

#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limits = common::limits(data[0], data[1]);
    let buf = &data[2..];
    let mut pos = 0;
    let mut head = RequestHead::default();
    'requests: for _ in 0..16 {
        let rest = &buf[pos..];
        let n = match parse_head(rest, &limits, &mut head) {
            Ok(Status::Complete(n)) => n,
            Ok(Status::Partial) | Err(_) => break,
        };
        common::check_head_ranges(&head, n, rest.len());
        pos += n;
        let mut dec = BodyDecoder::new(head.framing, limits.max_body);
        let mut body_len = 0u64;
        let mut ended = false;
        // Each decode call consumes at least one byte, ends, or asks for more.
        let budget = buf.len() - pos + 2;
        for _ in 0..budget {
            let rest = &buf[pos..];
            match dec.decode(rest) {
                Ok((n, Decoded::Data(r))) => {
                    assert!(n > 0 && n <= rest.len() && r.end <= n && !r.is_empty(), "bad Data step: n={n} r={r:?} of {}", rest.len());
                    body_len += r.len() as u64;
                    pos += n;
                }
                Ok((n, Decoded::End)) => {
                    assert!(n <= rest.len());
                    pos += n;
                    ended = true;
                    break;
                }
                Ok((n, Decoded::NeedMore)) => {
                    assert_eq!(n, rest.len(), "NeedMore without consuming all input");
                    pos += n;
                    break 'requests;
                }
                Err(_) => break 'requests,
            }
        }
        assert!(ended, "body decoding made no progress (framing {:?})", head.framing);
        assert!(pos <= buf.len(), "consumed {pos} of {} bytes", buf.len());
        assert_eq!(body_len, dec.total());
        if let Framing::Length(len) = head.framing {
            assert_eq!(body_len, len, "Content-Length body yielded another length");
        }
        if let Some(max) = limits.max_body {
            assert!(body_len <= max, "body of {body_len} bytes over max_body {max}");
        }
    }
    assert!(pos <= buf.len(), "consumed {pos} of {} bytes", buf.len());
});
