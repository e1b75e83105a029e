//! Owned snapshots of parsed heads, and `parse_head` fed whole, as a
//! growing prefix and in random reads, every mode giving the same answer.

use qiao_http::{parse_head, Framing, Limits, ParseError, RequestHead, Status, Version};

use super::{all_ways, show};

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
