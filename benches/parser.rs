//! Micro-benchmarks of the sans-IO HTTP ring (`qiao_http`), the part of a
//! request's cost that is ours alone (no kernel, no Python):
//!
//! - `parse_head`: one head from a table of realistic ones (see
//!   `common/heads.rs`), as bytes/s of head;
//! - `chunked`: the `BodyDecoder` over a 64 KiB chunked body sent in 1 KiB
//!   chunks and in one chunk, as bytes/s of encoded body. The decoder
//!   answers with ranges and never touches the data bytes, so this is the
//!   cost of the framing (per chunk), not of the data;
//! - `pipeline`: 16 small GETs in one buffer parsed back to back, as the
//!   event loop does with a pipelined batch.
//!
//! Why: these run on every request before the app is called, with the GIL
//! free; a regression here is invisible in end-to-end numbers dominated by
//! Python, so it is measured alone. Run with `cargo bench --bench parser`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qiao_http::{parse_head, BodyDecoder, Decoded, Framing, Limits, RequestHead, Status};

mod common;

/// Parses `buf` as one complete head, reusing `head` as a connection does.
fn parse_one(buf: &[u8], limits: &Limits, head: &mut RequestHead) -> usize {
    match parse_head(buf, limits, head) {
        Ok(Status::Complete(n)) => n,
        other => panic!("not a complete head: {other:?}"),
    }
}

fn bench_heads(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_head");
    for (name, buf) in common::heads::heads() {
        let mut head = RequestHead::default();
        assert_eq!(parse_one(&buf, &limits, &mut head), buf.len(), "{name}");
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &buf, |b, buf| {
            b.iter(|| parse_one(black_box(buf), &limits, &mut head))
        });
    }
    group.finish();
}

/// A `Transfer-Encoding: chunked` body of `total` bytes in chunks of
/// `chunk` bytes, with its final empty chunk.
fn chunked_body(total: usize, chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + total / chunk * 8 + 8);
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend((0..n).map(|i| b'a' + (i % 26) as u8));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Decodes a whole chunked body held in one buffer, as `BodyReader` does
/// once it has it all; returns the body bytes found.
fn decode_all(src: &[u8]) -> usize {
    let mut decoder = BodyDecoder::new(Framing::Chunked, None);
    let (mut pos, mut body) = (0, 0);
    loop {
        match decoder.decode(&src[pos..]) {
            Ok((n, Decoded::Data(r))) => {
                body += r.len();
                pos += n;
            }
            Ok((n, Decoded::NeedMore)) => pos += n,
            Ok((_, Decoded::End)) => return body,
            Err(e) => panic!("bad chunked body: {e:?}"),
        }
    }
}

fn bench_chunked(c: &mut Criterion) {
    const BODY: usize = 64 * 1024;
    let mut group = c.benchmark_group("chunked");
    for (name, chunk) in [("64KiB_in_1KiB_chunks", 1024), ("64KiB_in_one_chunk", BODY)] {
        let src = chunked_body(BODY, chunk);
        assert_eq!(decode_all(&src), BODY);
        group.throughput(Throughput::Bytes(src.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &src, |b, src| {
            b.iter(|| decode_all(black_box(src)))
        });
    }
    group.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    const BATCH: usize = 16;
    let limits = Limits::default();
    let buf = common::heads::MINIMAL.repeat(BATCH);
    let mut head = RequestHead::default();
    let parse_batch = |buf: &[u8], head: &mut RequestHead| {
        let (mut start, mut count) = (0, 0);
        while start < buf.len() {
            start += parse_one(&buf[start..], &limits, head);
            // What the loop decides next: a GET has no body to wait for.
            debug_assert_eq!(head.framing, Framing::Empty);
            count += 1;
        }
        count
    };
    assert_eq!(parse_batch(&buf, &mut head), BATCH);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function(format!("{BATCH}_minimal_gets"), |b| {
        b.iter(|| parse_batch(black_box(&buf), &mut head))
    });
    group.finish();
}

criterion_group!(benches, bench_heads, bench_chunked, bench_pipeline);
criterion_main!(benches);
