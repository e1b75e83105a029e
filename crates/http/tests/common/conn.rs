//! A simulated connection: pipelined requests served through the loop's
//! own state machine (`http::conn`) from any sequence of reads.

use qiao_http::conn::{advance, after_request, Phase, Rules, Step};
use qiao_http::{BodyDecoder, Decoded, Limits, ParseError, RequestHead};

use super::{all_ways, Parsed};

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
