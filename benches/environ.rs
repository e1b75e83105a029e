//! Micro-benchmarks of the WSGI environ builder with a real interpreter:
//! per request, the server copies its template dict and fills it from the
//! parsed head (`qiao::wsgi::environ::fill_environ`). This measures that,
//! for the same heads as `benches/parser.rs`, as time per request:
//!
//! - `environ_warm`: the thread's `EnvironCache` has seen this request
//!   before: every `HTTP_*` key, and every short value, comes from it (the
//!   steady state of a serving thread under repetitive traffic);
//! - `environ_cold`: a fresh `EnvironCache` per request (a thread's first
//!   requests, or names and values it has not seen), so each `HTTP_*` key
//!   is built and interned and each value decoded;
//! - `template_copy`: the dict copy alone, to split the cost.
//!
//! Every timing includes dropping the environ, as the server does after
//! the response; `wsgi.input` and `start_response` are not made here.
//!
//! Why: this is the Python-side work the server does before calling the
//! app, with the GIL held, on every request; `hello`-style apps spend a
//! large share of their time here. Needs libpython on the library path:
//! see `bench/README.md`. Run with `cargo bench --bench environ`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use qiao::wsgi::environ::{fill_environ, EnvironCache, EnvironConfig};
use qiao::wsgi::setup::{environ_template, TemplateShape};
use qiao_http::{parse_head, BodyDecoder, Limits, RequestHead, Status};
use qiao_io::{BodyReader, Exchange, ListenerInfo, Output, PeerInfo};

mod common;

/// The template dict `serve` builds with the default settings (threads,
/// one process, no script name), by the server's own function.
fn template(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let shape = TemplateShape {
        multithread: true,
        multiprocess: false,
        script_name: "",
    };
    environ_template(py, &shape, false)
}

/// What the event loop hands the WSGI ring for one request, minus the
/// socket: the descriptors are -1 and building the environ never reads or
/// writes them (it only looks at the buffer, the peer and the listener).
struct Request {
    head: RequestHead,
    body: BodyReader,
    out: Output,
    peer: PeerInfo,
    listener: ListenerInfo,
}

impl Request {
    fn new(buf: Vec<u8>) -> Request {
        let mut head = RequestHead::default();
        let n = match parse_head(&buf, &Limits::default(), &mut head) {
            Ok(Status::Complete(n)) => n,
            other => panic!("not a complete head: {other:?}"),
        };
        let decoder = BodyDecoder::new(head.framing, None);
        Request {
            body: BodyReader::new(
                qiao_io::wire::Wire::default(),
                buf,
                n,
                decoder,
                false,
                Duration::ZERO,
            ),
            head,
            out: Output::default(),
            peer: PeerInfo {
                addr: "192.0.2.17".into(),
                port: "53412".into(),
                ip: Some([192, 0, 2, 17].into()),
                ..PeerInfo::default()
            },
            listener: ListenerInfo {
                server_name: "0.0.0.0".into(),
                server_port: "8000".into(),
                uwsgi: false,
            },
        }
    }

    fn exchange(&mut self) -> Exchange<'_> {
        Exchange {
            head: &self.head,
            base: 0,
            body: &mut self.body,
            out: &mut self.out,
            peer: &self.peer,
            listener: &self.listener,
            date: b"Mon, 24 Nov 2025 08:32:00 GMT",
        }
    }
}

/// One request's environ, as `WsgiServe::serve` makes it (with the
/// default settings: no trusted proxies, plain http).
fn build<'py>(
    py: Python<'py>,
    template: &Bound<'py, PyDict>,
    ex: &Exchange<'_>,
    cache: &mut EnvironCache,
    config: &EnvironConfig,
) -> Bound<'py, PyDict> {
    let environ = template.copy().expect("copy the template");
    fill_environ(py, &environ, ex, cache, config).expect("fill the environ");
    environ
}

fn bench_environ(c: &mut Criterion) {
    Python::initialize();
    Python::attach(|py| {
        let template = template(py).expect("build the template");
        let config = EnvironConfig::default();
        let mut requests: Vec<_> = common::heads::heads()
            .into_iter()
            .map(|(name, buf)| (name, Request::new(buf)))
            .collect();

        let mut group = c.benchmark_group("environ_warm");
        group.throughput(Throughput::Elements(1));
        for (name, req) in &mut requests {
            let ex = req.exchange();
            let mut cache = EnvironCache::default();
            let environ = build(py, &template, &ex, &mut cache, &config);
            assert!(environ.len() > template.len(), "{name}");
            group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| build(py, &template, black_box(&ex), &mut cache, &config))
            });
        }
        group.finish();

        let mut group = c.benchmark_group("environ_cold");
        group.throughput(Throughput::Elements(1));
        for (name, req) in &mut requests {
            let ex = req.exchange();
            group.bench_function(BenchmarkId::from_parameter(&name), |b| {
                // The cache is made before and dropped after the timing.
                b.iter_batched(
                    EnvironCache::default,
                    |mut cache| {
                        build(py, &template, black_box(&ex), &mut cache, &config);
                        cache
                    },
                    BatchSize::SmallInput,
                )
            });
        }
        group.finish();

        let mut group = c.benchmark_group("template_copy");
        group.throughput(Throughput::Elements(1));
        group.bench_function("copy", |b| {
            b.iter(|| black_box(&template).copy().expect("copy the template"))
        });
        group.finish();
    });
}

criterion_group!(benches, bench_environ);
criterion_main!(benches);
