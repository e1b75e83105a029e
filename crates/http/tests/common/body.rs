//! `BodyDecoder` driven as the server drives it, whole, byte by byte and
//! in random reads.

use qiao_http::{BodyDecoder, Decoded, Framing, ParseError};

use super::all_ways;

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
