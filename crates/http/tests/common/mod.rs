//! Shared helpers for the `crates/http/tests/http_*.rs` suites: a deterministic PRNG,
//! owned snapshots of parsed heads, the three feeding modes (whole, byte by
//! byte, random splits) for `parse_head` and `BodyDecoder`, and a
//! simulated connection that serves pipelined requests through the loop's
//! own state machine (`http::conn`) from any sequence of reads.

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]
#![allow(dead_code)]

use qiao_http::conn::{advance, after_request, Phase, Rules, Step};
use qiao_http::{
    parse_head, BodyDecoder, Decoded, Framing, Limits, ParseError, RequestHead, Status, Version,
};

/// Seeds used for the "random splits" feeding mode.
pub const SEEDS: [u64; 5] = [1, 7, 42, 1234, 0xDEAD_BEEF];

#[path = "cuts.rs"]
mod cuts;
pub use cuts::random_cuts;

/// Runs `f` on `input` whole, byte by byte and cut at random points (one
/// read per piece); every mode must give the same answer, which is returned.
pub fn all_ways<T: PartialEq + std::fmt::Debug>(input: &[u8], f: impl Fn(&[&[u8]]) -> T) -> T {
    let whole = f(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(f(&bytes), whole, "byte by byte vs whole, {}", show(input));
    for seed in SEEDS {
        let cuts = random_cuts(input.len(), seed);
        let got = f(&pieces(input, &cuts));
        assert_eq!(
            got,
            whole,
            "reads cut at {cuts:?} vs whole, {}",
            show(input)
        );
    }
    whole
}

/// Splits `input` into reads at `cuts`.
pub fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        out.push(&input[start..c]);
        start = c;
    }
    out
}

/// An owned snapshot of a [`RequestHead`], comparable across feedings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub head_len: usize,
    pub method: String,
    pub target: String,
    pub path: String,
    pub query: String,
    pub authority: Option<String>,
    pub version: Version,
    pub headers: Vec<(String, String)>,
    pub host: Option<String>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

fn text(buf: &[u8], r: &std::ops::Range<usize>) -> String {
    String::from_utf8_lossy(&buf[r.clone()]).into_owned()
}

impl Parsed {
    pub fn of(buf: &[u8], h: &RequestHead) -> Self {
        Parsed {
            head_len: h.head_len,
            method: text(buf, &h.method),
            target: text(buf, &h.target),
            path: text(buf, &h.path),
            query: text(buf, &h.query),
            authority: h.authority.as_ref().map(|r| text(buf, r)),
            version: h.version,
            headers: h
                .headers
                .iter()
                .map(|(n, v)| (text(buf, n), text(buf, v)))
                .collect(),
            host: h.host.as_ref().map(|r| text(buf, r)),
            framing: h.framing,
            keep_alive: h.keep_alive,
            expect_continue: h.expect_continue,
        }
    }
}

type HeadResult = Result<Option<Parsed>, ParseError>;

fn parse_once(buf: &[u8], limits: &Limits, head: &mut RequestHead) -> HeadResult {
    match parse_head(buf, limits, head)? {
        Status::Partial => Ok(None),
        Status::Complete(n) => {
            assert_eq!(n, head.head_len, "Complete(n) and head_len disagree");
            assert!(n <= buf.len());
            Ok(Some(Parsed::of(buf, head)))
        }
    }
}

/// A short printable preview of raw bytes for failure messages.
pub fn show(raw: &[u8]) -> String {
    let start = String::from_utf8_lossy(&raw[..raw.len().min(120)]);
    format!("{start:?} ({} bytes)", raw.len())
}

/// Parses `raw` whole, then as a growing prefix (byte by byte), then as
/// reads at random cut points, and checks that every mode agrees: prefixes
/// shorter than the head are `Partial`, longer ones give the same head; an
/// error is the same error whenever it is first reported. `Ok(None)` means
/// the whole input is still a partial head.
pub fn head_all_ways(raw: &[u8], limits: &Limits) -> HeadResult {
    let whole = parse_once(raw, limits, &mut RequestHead::default());
    // Growing prefix, one RequestHead reused as the server does.
    let mut head = RequestHead::default();
    for i in 0..=raw.len() {
        let got = parse_once(&raw[..i], limits, &mut head);
        match (&whole, &got) {
            (_, Ok(None)) => {
                if let Ok(Some(p)) = &whole {
                    assert!(
                        i < p.head_len,
                        "prefix of {i} bytes is Partial but the head is {}",
                        p.head_len
                    );
                }
            }
            (Ok(Some(p)), Ok(Some(q))) => {
                assert_eq!(p, q, "prefix of {i} bytes parsed differently")
            }
            (Err(e), Err(f)) => {
                assert_eq!(e, f, "prefix of {i} bytes failed differently");
                break;
            }
            _ => panic!(
                "prefix of {i} bytes of {}: {got:?}, whole: {whole:?}",
                show(raw)
            ),
        }
    }
    // In reads: the first answer that is not Partial is the final one.
    all_ways(raw, |reads| {
        let (mut buf, mut head, mut answer) = (Vec::new(), RequestHead::default(), Ok(None));
        for read in reads {
            buf.extend_from_slice(read);
            answer = parse_once(&buf, limits, &mut head);
            if !matches!(answer, Ok(None)) {
                break;
            }
        }
        answer
    })
}

/// One field of the parsed head to check.
#[derive(Debug)]
pub enum C {
    M(&'static str),
    P(&'static str),
    Q(&'static str),
    T(&'static str),
    A(Option<&'static str>),
    Host(Option<&'static str>),
    V(Version),
    F(Framing),
    Ka(bool),
    Ec(bool),
    /// head_len; without it the whole input must be the head.
    Hl(usize),
    H(&'static [(&'static str, &'static str)]),
}

pub enum Want {
    Ok(&'static [C]),
    Err(ParseError, u16),
    Partial,
}

pub type Case = (&'static str, &'static [u8], Want);

pub fn check(name: &str, raw: &[u8], want: &Want, limits: &Limits) {
    let got = head_all_ways(raw, limits);
    match (want, got) {
        (Want::Err(e, status), got) => {
            assert_eq!(got, Err(*e), "{name}");
            assert_eq!(e.status(), *status, "{name}: status of {e:?}");
        }
        (Want::Partial, got) => assert_eq!(got, Ok(None), "{name}"),
        (Want::Ok(checks), Ok(Some(p))) => verify(name, raw, &p, checks),
        (Want::Ok(_), got) => panic!("{name}: expected a head, got {got:?}"),
    }
}

fn verify(name: &str, raw: &[u8], p: &Parsed, checks: &[C]) {
    use C::*;
    if !checks.iter().any(|c| matches!(c, Hl(_))) {
        assert_eq!(p.head_len, raw.len(), "{name}: head_len");
    }
    for c in checks {
        let ok = match c {
            M(m) => p.method == *m,
            P(s) => p.path == *s,
            Q(s) => p.query == *s,
            T(s) => p.target == *s,
            A(a) => p.authority.as_deref() == *a,
            Host(h) => p.host.as_deref() == *h,
            V(v) => p.version == *v,
            F(f) => p.framing == *f,
            Ka(k) => p.keep_alive == *k,
            Ec(e) => p.expect_continue == *e,
            Hl(n) => p.head_len == *n,
            H(hs) => hs
                .iter()
                .map(|&(n, v)| (n.into(), v.into()))
                .eq(p.headers.clone()),
        };
        assert!(ok, "{name}: {c:?} does not hold for {p:#?}");
    }
}

/// Runs every case, then fails listing all the cases that failed.
#[allow(
    clippy::print_stdout,
    reason = "a test's summary line, shown with --nocapture"
)]
pub fn run(cases: &[Case], limits: &Limits) {
    let fails = |(name, raw, want): &&Case| {
        std::panic::catch_unwind(|| check(name, raw, want, limits)).is_err()
    };
    let failed: Vec<&str> = cases.iter().filter(fails).map(|c| c.0).collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed: {failed:?}",
        failed.len(),
        cases.len()
    );
    println!("{} cases passed", cases.len());
}

pub const fn err(e: ParseError, status: u16) -> Want {
    Want::Err(e, status)
}

/// What feeding a body to a [`BodyDecoder`] came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyOutcome {
    /// `End` reached: the body and how many input bytes it took.
    Done(Vec<u8>, usize),
    /// Input exhausted before `End`: the body so far.
    Incomplete(Vec<u8>),
    Error(ParseError),
}

/// Drives a [`BodyDecoder`] over `reads` as the server does (unconsumed
/// bytes stay in the buffer) and checks the decoder's contract on each call.
pub fn decode_reads(framing: Framing, max_body: Option<u64>, reads: &[&[u8]]) -> BodyOutcome {
    let mut dec = BodyDecoder::new(framing, max_body);
    let (mut body, mut buf, mut consumed) = (Vec::new(), Vec::new(), 0);
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            let (n, d) = match dec.decode(&buf) {
                Ok(x) => x,
                Err(e) => return BodyOutcome::Error(e),
            };
            assert!(n <= buf.len(), "consumed more than given");
            match &d {
                Decoded::Data(r) => {
                    assert!(!r.is_empty() && r.end <= n, "data {r:?}, n={n}");
                    body.extend_from_slice(&buf[r.clone()]);
                }
                Decoded::NeedMore => assert_eq!(n, buf.len(), "NeedMore must consume all input"),
                Decoded::End => {
                    assert!(dec.is_done());
                    assert_eq!(dec.total(), body.len() as u64);
                    assert_eq!(dec.decode(&buf[n..]), Ok((0, Decoded::End)), "End is final");
                    return BodyOutcome::Done(body, consumed + n);
                }
            }
            consumed += n;
            buf.drain(..n);
            if d == Decoded::NeedMore || buf.is_empty() {
                break;
            }
        }
    }
    // A decoder whose body ended exactly at the last byte says so when asked.
    match dec.decode(&[]) {
        Ok((0, Decoded::End)) => BodyOutcome::Done(body, consumed),
        Ok((0, Decoded::NeedMore)) => BodyOutcome::Incomplete(body),
        other => panic!("decode(&[]) gave {other:?}"),
    }
}

/// Decodes `input` whole, byte by byte and in random reads; all must agree.
pub fn body_all_ways(framing: Framing, max_body: Option<u64>, input: &[u8]) -> BodyOutcome {
    all_ways(input, |reads| decode_reads(framing, max_body, reads))
}

/// One request as the server loop sees it: head snapshot plus body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    pub head: Parsed,
    pub body: Vec<u8>,
}

/// How a simulated connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnEnd {
    /// Input ended between requests.
    Eof,
    /// Input ended inside a head or a body.
    Incomplete,
    /// The last request did not allow keep-alive; the rest was not read.
    Closed,
    Error(ParseError),
}

/// Serves pipelined requests from `reads` as the event loop does: the
/// loop's own state machine (`http::conn::advance`) over a buffer the
/// reads append to; at each dispatch the "application" reads the whole
/// body, and `after_request` says where the connection goes next.
pub fn serve(reads: &[&[u8]], limits: &Limits) -> (Vec<Req>, ConnEnd) {
    let rules = Rules {
        limits,
        uwsgi: false,
        h2c: false,
        proxy_allowed: false,
        health_path: None,
    };
    let mut reqs = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut head = RequestHead::default();
    let mut phase = Phase::Head { started: false };
    let mut head_len = 0;
    let mut body: Option<(BodyDecoder, Req)> = None;
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            if let Some((dec, req)) = body.as_mut() {
                let (n, d) = match dec.decode(&buf) {
                    Ok(x) => x,
                    Err(e) => return (reqs, ConnEnd::Error(e)),
                };
                if let Decoded::Data(r) = &d {
                    req.body.extend_from_slice(&buf[r.clone()]);
                }
                buf.drain(..n);
                match d {
                    Decoded::NeedMore => break,
                    Decoded::Data(_) => continue,
                    Decoded::End => {
                        let (dec, req) = body.take().unwrap();
                        let keep = req.head.keep_alive;
                        reqs.push(req);
                        if !keep {
                            return (reqs, ConnEnd::Closed);
                        }
                        phase = after_request(dec);
                    }
                }
            }
            match advance(&mut phase, &buf, reqs.is_empty(), &rules, &mut head) {
                Step::NeedMore => break,
                Step::HeadStarted => {}
                Step::Head { len, .. } => head_len = len,
                Step::Ready => {
                    let req = Req {
                        head: Parsed::of(&buf, &head),
                        body: Vec::new(),
                    };
                    buf.drain(..head_len);
                    body = Some((BodyDecoder::new(head.framing, limits.max_body), req));
                }
                Step::Discard(n) => {
                    buf.drain(..n);
                }
                Step::Refuse(e) => return (reqs, ConnEnd::Error(e)),
                other => panic!("no such step without PROXY, h2c or probes: {other:?}"),
            }
        }
    }
    let between = body.is_none()
        && matches!(phase, Phase::Head { .. })
        && buf.iter().all(|&b| b == b'\r' || b == b'\n');
    (
        reqs,
        if between {
            ConnEnd::Eof
        } else {
            ConnEnd::Incomplete
        },
    )
}

/// [`serve`] whole, byte by byte and in random reads; all must agree.
pub fn serve_all_ways(input: &[u8], limits: &Limits) -> (Vec<Req>, ConnEnd) {
    all_ways(input, |reads| serve(reads, limits))
}
