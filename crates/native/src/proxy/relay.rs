//! The second half of a proxied exchange: the upstream's response head
//! (status and reason phrase as sent, end-to-end fields only) and its body,
//! written to the client as it arrives — with the upstream's
//! `Content-Length`, else chunked (or until close for HTTP/1.0). What is
//! buffered is flushed whenever the upstream has nothing more ready, so a
//! slow upstream's first bytes reach the client at once. An upstream that
//! fails before any of it has left (a malformed chunk in the first read)
//! gets the client a 502 instead, as from nginx.

use std::ops::Range;

use super::spawned::send_plain;
use super::{is_hop_by_hop, NativeProxy};
use crate::runtime::Client;
use crate::upconn::{Next, UpConn};
use crate::upstream::Verdict;
use crate::{outcome, start_with};
use qiao_http::response::{push_chunk, BodyMode, Plan, RequestFacts, LAST_CHUNK};
use qiao_http::upstream_head::{BodyFraming, UpstreamHead};
use qiao_io::output::OUTPUT_FLUSH_BYTES;
use qiao_io::service::{Exchange, Outcome};

/// How relaying the body ended.
enum Relayed {
    Complete,
    /// The client's socket failed or stalled.
    ClientGone,
    /// The upstream failed or went silent.
    Upstream(String),
}

impl NativeProxy {
    /// Sends the upstream's response to the client as it arrives; releases
    /// the upstream, and keeps its connection if it can carry another.
    /// Returns the outcome, the status and the body bytes relayed.
    pub(super) async fn relay(
        &self,
        ex: &mut Exchange<'_>,
        facts: RequestFacts,
        client: &mut Client,
        index: usize,
        head: UpstreamHead,
        mut conn: UpConn,
    ) -> (Outcome, u16, u64) {
        let plan = forward_head(ex, facts, conn.bytes(), &head);
        let sent_before = client.sent();
        let mut buf = std::mem::take(ex.out.buffer());
        let mut payload = 0;
        let result = self
            .copy_body(&mut conn, &head, plan.mode, client, &mut buf, &mut payload)
            .await;
        buf.clear();
        *ex.out.buffer() = buf;
        let (verdict, done) = match result {
            Relayed::Complete => {
                if head.reusable && conn.is_clean() {
                    self.give_back(index, conn);
                }
                (Verdict::Success, outcome(ex, &plan))
            }
            Relayed::ClientGone => (Verdict::Neither, Outcome::Close),
            Relayed::Upstream(e) if client.sent() == sent_before => {
                // Nothing of the response left yet (the head is still in
                // the buffer, dropped): a clean 502, as nginx answers, rather
                // than a connection closed without a word.
                let url = &self.upstreams.servers[index].url;
                log::error!("proxy: upstream {url} failed: {e}");
                self.upstreams.release(index, Verdict::Failure);
                let text = super::bad_gateway(&format!("  {url}: {e}\n"));
                return send_plain(ex, facts, client, (502, "Bad Gateway", &text)).await;
            }
            Relayed::Upstream(e) => {
                let url = &self.upstreams.servers[index].url;
                log::error!("proxy: upstream {url} failed mid-response: {e}");
                (Verdict::Failure, Outcome::Close)
            }
        };
        self.upstreams.release(index, verdict);
        (done, head.status, payload)
    }

    /// Copies the body after `head` to the client in the framing `mode`,
    /// after the head already in `buf`; counts the body's bytes (not the
    /// chunk framing) in `payload` as they are queued.
    async fn copy_body(
        &self,
        conn: &mut UpConn,
        head: &UpstreamHead,
        mode: BodyMode,
        client: &mut Client,
        buf: &mut Vec<u8>,
        payload: &mut u64,
    ) -> Relayed {
        let mut body = conn.body(head);
        let timeout = Some(self.opts.timeout);
        loop {
            let span = match conn.body_next(&mut body, timeout).await {
                Ok(Next::Data(span)) => span,
                Ok(Next::End) => break,
                Ok(Next::Idle) => {
                    // What is buffered goes out before the upstream is
                    // waited for.
                    if !client.write_all(buf).await {
                        return Relayed::ClientGone;
                    }
                    continue;
                }
                Err(e) => return Relayed::Upstream(e),
            };
            let data = &conn.bytes()[span];
            match mode {
                BodyMode::None => continue,
                BodyMode::Length(_) | BodyMode::UntilClose => buf.extend_from_slice(data),
                BodyMode::Chunked => push_chunk(data, buf),
            }
            *payload += data.len() as u64;
            if buf.len() >= OUTPUT_FLUSH_BYTES && !client.write_all(buf).await {
                return Relayed::ClientGone;
            }
        }
        if mode == BodyMode::Chunked {
            buf.extend_from_slice(LAST_CHUNK);
        }
        if client.write_all(buf).await {
            Relayed::Complete
        } else {
            Relayed::ClientGone
        }
    }
}

/// Writes the client's response head into the output buffer: the status
/// and reason phrase as the upstream sent them (`raw` holds the head), its
/// end-to-end fields, a `Content-Length` only if it frames the body.
fn forward_head(
    ex: &mut Exchange<'_>,
    facts: RequestFacts,
    raw: &[u8],
    head: &UpstreamHead,
) -> Plan {
    let field = |r: &Range<usize>| &raw[r.clone()];
    let length_frames = matches!(head.framing, BodyFraming::Length(_) | BodyFraming::None);
    let fields: Vec<(&[u8], &[u8])> = head
        .fields
        .iter()
        .map(|(n, v)| (field(n), field(v)))
        .filter(|(n, _)| {
            (length_frames || !n.eq_ignore_ascii_case(b"content-length"))
                && !is_hop_by_hop(n, head.fields.iter().map(|(n, v)| (field(n), field(v))))
        })
        .collect();
    let length = if length_frames {
        head.content_length
    } else {
        None
    };
    start_with(ex, facts, head.status, field(&head.reason), &fields, length)
}
