//! The protocol front of a worker: TLS handshakes and HTTP/2, on a small
//! tokio runtime of its own.
//!
//! - HTTP/1.1 over TLS: the front accepts, reads a PROXY header if one is
//!   due, refuses plain HTTP and does the handshake (with its timeout and
//!   ALPN); then it hands the socket and the rustls session to the event
//!   loop, which serves the connection like a plaintext one through
//!   [`qiao_io::wire`]. One hop per connection, none per request.
//! - HTTP/2 (ALPN `h2`, or h2c with prior knowledge handed over by the
//!   loop): served here, each stream one HTTP/1.1 request to the loop
//!   over internal connections ([`pipe`], [`upstream`]); a stream
//!   without a body, or whose body was taken in first ([`upload`]), is
//!   handed over in memory ([`fast`]), and every answer comes back in
//!   memory ([`answered`], `qiao_io::answer`).
//!
//! Why the handshake stays here: it is the one slow, multi-round part of
//! TLS, with its own timeout and refusals, and running it as a task keeps
//! it out of the loop's connection states. What is per request (records,
//! crypto) runs in the loop, on the thread that serves the request.
//!
//! - [`tls`]: the rustls configuration and the handshake's facts.
//! - [`pipe`]: internal connections, [`pipe::Prefixed`] streams.
//! - [`answered`]: the front's end of an internal connection, the loop's
//!   answers taken in memory first.
//! - [`h2`]: HTTP/2, each stream one HTTP/1.1 request to the loop.
//! - [`heads`]: a stream's head as HTTP/1.1 for the loop, and back.
//! - [`upload`]: a request body taken into memory, or streamed after
//!   what was taken.
//! - [`fast`]: a stream whose whole request is in memory, written to the
//!   loop and read back by hand.
//! - [`upstream`]: a stream whose body is streamed, through hyper's
//!   HTTP/1.1 client; both reuse their internal connections from stream
//!   to stream.
//!
//! Draining (SIGTERM): the listeners close, HTTP/2 connections send
//! GOAWAY and finish their streams; TLS connections the loop took over
//! drain there. The loop waits for the front's connections
//! ([`qiao_io::inbox::Inbox::enter`]). Stopping drops the runtime.

mod answered;
mod fast;
pub mod h2;
mod heads;
mod pipe;
pub mod tls;
mod upload;
mod upstream;

use std::net::TcpListener as StdTcpListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use qiao_http::forwarded::TrustedProxies;
use qiao_http::proxy_protocol::{parse_proxy_header, ProxiedPeer};
use qiao_http::Status;
use qiao_io::inbox::{Adopted, Carrier, Handoff, Inbox};
use qiao_io::listener::{peer_of, PeerInfo};
use qiao_io::Shared;
use qiao_native::runtime::NativeRuntime;

/// Longest TLS handshake, from accept; then the connection is closed.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer for plain HTTP sent to a TLS port (detected by its first
/// byte: a TLS handshake record starts with 0x16).
const PLAIN_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\
Content-Type: text/plain\r\nContent-Length: 38\r\n\r\nplain HTTP request sent to a TLS port\n";
/// Pause before accepting again after `accept(2)` failed (out of
/// descriptors): the failure would only repeat at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What the front of one worker serves.
pub struct FrontConfig {
    /// TLS listeners (TCP) with the loop's info index of each.
    pub tls_listeners: Vec<(StdTcpListener, usize)>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Serve h2c handed over by the loop.
    pub h2c: bool,
    /// Idle time allowed on an HTTP/2 connection without streams.
    pub keepalive: Duration,
    /// Client connections (TLS, h2c) held at once (`--max-connections`);
    /// beyond, TLS accepting waits for one to end.
    pub max_connections: usize,
    /// `--proxy-protocol`, with `--proxy-allow-from`: TLS connections
    /// start with a PROXY header too (before the handshake).
    pub proxy_protocol: Option<Arc<TrustedProxies>>,
}

/// A running front; dropping it stops its tasks (at their next turn).
pub struct Front {
    stop: Arc<watch::Sender<bool>>,
}

impl Front {
    /// Starts the listeners' tasks on `rt`, the worker's loop-driven
    /// runtime (`native::runtime`): they run on the thread that leads the
    /// event loop, while it waits, so a request through the front costs
    /// no switch between threads (a thread of its own for the front cost
    /// two per HTTP/2 request).
    pub fn start(
        config: FrontConfig,
        inbox: Arc<Inbox>,
        shared: &Shared,
        rt: Arc<NativeRuntime>,
    ) -> std::io::Result<Front> {
        let (drain_tx, drain_rx) = watch::channel(shared.draining());
        let drain_tx = Arc::new(drain_tx);
        {
            let tx = drain_tx.clone();
            shared.add_hook(Box::new(move || {
                tx.send_replace(true);
            }));
        }
        // The loop's answers to HTTP/2 streams wake their readers when
        // the runtime next runs (`qiao_io::answer::Wakes`).
        rt.run_wakes(inbox.wakes().clone());
        let keepalive = config.keepalive;
        // One permit per client connection held (`--max-connections`).
        let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        if config.h2c {
            let (rt2, inbox2, drain, slots) =
                (rt.clone(), inbox.clone(), drain_rx.clone(), slots.clone());
            inbox.set_h2c(Box::new(move |h: Handoff| {
                // Beyond the limit the connection is closed (the loop
                // bounds plaintext connections before this anyway).
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    return;
                };
                let (inbox, drain) = (inbox2.clone(), drain.clone());
                let open = pipe::Open::new(&inbox);
                rt2.spawn(async move {
                    let _held = (open, permit);
                    if h.stream.set_nonblocking(true).is_err() {
                        return;
                    }
                    let Ok(tcp) = TcpStream::from_std(h.stream) else {
                        return;
                    };
                    let client = h2::Client::new(inbox, h.peer, h.listener, keepalive);
                    let io = pipe::Prefixed::new(h.read, tcp);
                    h2::serve(io, client, keepalive, drain).await;
                });
            }));
        }
        if let Some(tls) = &config.tls {
            let acceptor = TlsAcceptor::from(tls.clone());
            for (l, info) in config.tls_listeners {
                l.set_nonblocking(true)?;
                let handle = rt.handle();
                let _guard = handle.enter();
                let l = TcpListener::from_std(l)?;
                let front = Listening {
                    acceptor: acceptor.clone(),
                    inbox: inbox.clone(),
                    slots: slots.clone(),
                    keepalive,
                    proxy_protocol: config.proxy_protocol.clone(),
                };
                rt.spawn(accept_loop(l, info, front, drain_rx.clone()));
            }
        }
        Ok(Front { stop: drain_tx })
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // Listeners stop accepting; the runtime's owner drops the rest.
        self.stop.send_replace(true);
    }
}

/// What every TLS listener of the front shares.
#[derive(Clone)]
struct Listening {
    acceptor: TlsAcceptor,
    inbox: Arc<Inbox>,
    /// One permit per connection held (`--max-connections`).
    slots: Arc<Semaphore>,
    keepalive: Duration,
    /// `--proxy-protocol`: the PROXY header comes before the handshake,
    /// accepted from these peers (`--proxy-allow-from`).
    proxy_protocol: Option<Arc<TrustedProxies>>,
}

async fn accept_loop(
    listener: TcpListener,
    info: usize,
    front: Listening,
    mut drain: watch::Receiver<bool>,
) {
    loop {
        if *drain.borrow() {
            return; // the listener closes: no new connections
        }
        let permit = tokio::select! {
            p = front.slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            r = drain.changed() => match r {
                Ok(()) => continue,
                Err(_) => return, // the server is gone
            },
        };
        let (tcp, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(_) => {
                    // Out of descriptors: retry shortly rather than spin.
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            r = drain.changed() => match r {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let _ = tcp.set_nodelay(true);
        let open = pipe::Open::new(&front.inbox);
        let (front, drain) = (front.clone(), drain.clone());
        tokio::spawn(async move {
            let held = Box::new((open, permit));
            serve_tls(tcp, peer_of(addr), info, front, drain, held).await;
        });
    }
}

/// The PROXY header (`--proxy-protocol`) before the TLS handshake: reads
/// it, with whatever follows it in the same reads, into `early`; returns
/// the header's length and the client it names. Refused (`None`) as the
/// loop refuses it: malformed, or from a peer not in `--proxy-allow-from`.
/// The client it names is the peer from then on (the loop decides its
/// trust for forwarding headers when it adopts the connection).
async fn read_proxy_header(
    tcp: &mut TcpStream,
    peer: &PeerInfo,
    allowed: &TrustedProxies,
    early: &mut Vec<u8>,
) -> Option<(usize, Option<ProxiedPeer>)> {
    if !allowed.admits(peer.ip) {
        return None;
    }
    loop {
        match parse_proxy_header(early) {
            Ok(Status::Complete(header)) => return Some(header),
            Ok(Status::Partial) => {}
            Err(_) => return None,
        }
        let mut buf = [0u8; 512];
        match tcp.read(&mut buf).await {
            Ok(n) if n > 0 => early.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// Answers plain HTTP sent to a TLS port, then closes.
async fn refuse_plain(mut tcp: TcpStream) {
    let _ = tcp.write_all(PLAIN_TO_TLS).await;
    let _ = tcp.shutdown().await;
    // Read what the client sent until it closes: closing with unread
    // input would reset the connection, and the answer with it.
    let _ = tokio::time::timeout(pipe::PIPE_LINGER, async {
        let mut sink = [0u8; 4096];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// What a TLS connection holds while it lives (its `--max-connections`
/// permit, its place in the front's open count): dropped when it ends,
/// wherever that is.
type Held = Box<(pipe::Open, tokio::sync::OwnedSemaphorePermit)>;

async fn serve_tls(
    mut tcp: TcpStream,
    mut peer: PeerInfo,
    info: usize,
    front: Listening,
    drain: watch::Receiver<bool>,
    held: Held,
) {
    let mut early = Vec::new();
    if let Some(allowed) = &front.proxy_protocol {
        let read = read_proxy_header(&mut tcp, &peer, allowed, &mut early);
        let Ok(Some((len, client))) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, read).await
        else {
            return;
        };
        if let Some(c) = client {
            peer.addr = c.ip.to_string();
            peer.port = c.port.to_string();
            peer.ip = Some(c.ip);
        }
        early.drain(..len);
    }
    let mut first = [0u8; 1];
    let first = match early.first() {
        Some(&b) => b,
        None => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
            Ok(Ok(1)) => first[0],
            _ => return,
        },
    };
    if first != TLS_HANDSHAKE_RECORD {
        return refuse_plain(tcp).await;
    }
    let io = pipe::Prefixed::new(early, tcp);
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, front.acceptor.accept(io)).await
    {
        Ok(Ok(s)) => s,
        _ => return, // failed (alert sent by rustls) or timed out
    };
    let (_, conn) = stream.get_ref();
    peer.tls = Some(Arc::new(tls::facts(conn)));
    let (inbox, keepalive) = (front.inbox, front.keepalive);
    if conn.alpn_protocol() == Some(tls::ALPN_H2) {
        let client = h2::Client::new(inbox, peer, info, keepalive);
        h2::serve(stream, client, keepalive, drain).await;
        drop(held);
        return;
    }
    // HTTP/1.1: the loop takes the socket and the session over (`io::wire`).
    let (io, mut session) = stream.into_inner();
    let (rest, tcp) = io.into_parts();
    if !rest.is_empty() && !tls::take_early(&mut session, &rest) {
        return;
    }
    let Ok(tcp) = tcp.into_std() else {
        return;
    };
    inbox.push(Adopted {
        stream: Carrier::Tls(tcp, Box::new(session)),
        peer,
        listener: info,
        held: Some(held),
        pair_id: None,
        answer: None,
    });
}

#[cfg(test)]
mod tests {
    use super::PLAIN_TO_TLS;

    #[test]
    fn plain_to_tls_answer_is_framed() {
        let text = std::str::from_utf8(PLAIN_TO_TLS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        assert!(head.starts_with("HTTP/1.1 400 "));
    }
}
