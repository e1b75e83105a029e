//! `upstream_head`: arbitrary bytes into
//! `qiao_http::upstream_head::parse` (the native proxy's response heads).
//!
//! Input layout: byte 0's low bit says whether the request was HEAD; the
//! rest is the upstream's answer. Checks: it never panics; a complete head
//! has `0 < len <= buf.len()` and every range (reason, field names and
//! values) inside `buf[..len]`; a `Length` framing is never 0; every
//! prefix answers `None` (read more), the very same error, or (once it
//! holds the whole head) the very same head, so the answer does not
//! depend on how the head was split into reads.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qiao_http::upstream_head::{parse, BodyFraming};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, buf)) = data.split_first() else {
        return;
    };
    let to_head = flags & 1 == 1;
    let whole = parse(buf, to_head);
    if let Ok(Some(head)) = &whole {
        assert!(head.len > 0 && head.len <= buf.len());
        assert!(head.reason.end <= head.len);
        for (n, v) in &head.fields {
            assert!(n.end <= head.len && v.end <= head.len && n.start < n.end);
        }
        assert_ne!(head.framing, BodyFraming::Length(0));
    }
    for k in 0..buf.len() {
        match (parse(&buf[..k], to_head), &whole) {
            (Ok(None), _) => {}
            (Err(e), Err(w)) => assert_eq!(&e, w, "prefix {k}"),
            (Ok(Some(p)), Ok(Some(w))) => assert_eq!(&p, w, "prefix {k}"),
            (got, _) => panic!("prefix {k}: {got:?} but whole: {whole:?}"),
        }
    }
});
