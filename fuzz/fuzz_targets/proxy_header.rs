//! `proxy_header`: arbitrary bytes into
//! `qiao_http::proxy_protocol::parse_proxy_header`.
//!
//! Checks: it never panics; `Complete((n, _))` has `0 < n <= buf.len()`;
//! every prefix of the buffer answers `Partial`, the very same error, or
//! (once it holds the whole header) the very same `Complete`, so the answer
//! does not depend on how the header was split into reads.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qiao_http::proxy_protocol::parse_proxy_header;
use qiao_http::Status;

fuzz_target!(|data: &[u8]| {
    let whole = parse_proxy_header(data);
    if let Ok(Status::Complete((n, _))) = &whole {
        assert!(*n > 0 && *n <= data.len());
    }
    for k in 0..data.len() {
        match (parse_proxy_header(&data[..k]), &whole) {
            (Ok(Status::Partial), _) => {}
            (Err(e), Err(w)) => assert_eq!(&e, w, "prefix {k}"),
            (Ok(Status::Complete(c)), Ok(Status::Complete(w))) => assert_eq!(&c, w, "prefix {k}"),
            (got, _) => panic!("prefix {k}: {got:?} but whole: {whole:?}"),
        }
    }
});
