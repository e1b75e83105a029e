//! `--proxy-status PATH`: the state of every native proxy's upstreams as
//! JSON (`[{"url", "up", "active", "failures"}, ...]`, routes in the order
//! given), the same fields the portable `Proxy.states()` reports, so a
//! health dashboard or a test can see which upstream is marked down.

use std::sync::Arc;

use super::NativeProxy;
use crate::{method, plain, start};
use qiao_io::native_service::NativeService;
use qiao_io::service::{Exchange, Outcome};

/// Answers `GET`/`HEAD` with the upstream states.
pub struct ProxyStatus {
    pub proxies: Vec<Arc<NativeProxy>>,
}

impl NativeService for ProxyStatus {
    fn serve(&self, ex: &mut Exchange<'_>) -> (Outcome, u16) {
        let m = method(ex);
        if m != b"GET" && m != b"HEAD" {
            let allow: &[(&[u8], &[u8])] = &[(b"Allow", b"GET, HEAD")];
            return plain(ex, 405, "Method Not Allowed", "Method Not Allowed\n", allow);
        }
        let mut json = String::from("[");
        for p in &self.proxies {
            p.upstreams().states_json(&mut json);
        }
        json.push(']');
        let len = json.len().to_string();
        let fields: &[(&[u8], &[u8])] = &[
            (b"Content-Type", b"application/json"),
            (b"Content-Length", len.as_bytes()),
            (b"Cache-Control", b"no-store"),
        ];
        let plan = start(ex, 200, b"OK", fields, Some(json.len() as u64));
        let mut wait = qiao_io::sock::wait;
        let body: &[u8] = if plan.mode == qiao_http::response::BodyMode::None {
            b""
        } else {
            json.as_bytes()
        };
        if ex.out.write_with(body, &mut wait).is_err() {
            return (Outcome::Close, 200);
        }
        (crate::outcome(ex, &plan), 200)
    }
}
