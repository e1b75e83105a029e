//! Upstream connections of one serving thread: a current-thread tokio
//! runtime of its own and a pool of idle hyper HTTP/1.1 connections
//! (`hyper::client::conn::http1`), per proxy route and upstream.
//!
//! Why per thread, and not hyper-util's shared pooled client on a runtime
//! of its own: a serving thread proxies one request at a time and waits
//! for it anyway, so it drives the upstream connection itself (the
//! connection future is polled inside the thread's `block_on`, and the
//! thread's own runtime polls the sockets). A shared client runs each
//! connection as a task on other threads, which costs two or three thread
//! wake-ups per request: measured at under half of nginx's `proxy_pass`
//! rate, against the goal of matching it. hyper still does all of HTTP;
//! this module only keeps connections between requests.
//!
//! An idle connection is reused within [`POOL_IDLE`]; one the upstream
//! closed meanwhile is found out when the request fails on it, and the
//! caller retries on a new connection (as the portable proxy does).

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use super::ProxyBody;

/// An idle connection older than this is closed rather than reused: below
/// the upstream's own keep-alive timeout (Qiao's default is 5 s).
pub const POOL_IDLE: Duration = Duration::from_secs(2);
/// Idle connections a thread keeps per route and upstream (a thread serves
/// one request at a time, so one is the usual need).
pub const POOL_PER_THREAD: usize = 4;

/// One HTTP/1.1 connection to an upstream: the sender of requests and the
/// connection future that does the I/O, driven by whoever uses it.
pub struct Conn {
    pub sender: SendRequest<ProxyBody>,
    conn: Connection<TokioIo<TcpStream>, ProxyBody>,
    /// The connection future has finished (closed or failed).
    done: bool,
    /// It came from the pool (it may have been closed meanwhile).
    pub reused: bool,
}

impl Conn {
    /// Opens a connection to `addr` (`host:port`) within `timeout`.
    pub async fn open(addr: &str, timeout: Duration) -> Result<Conn, String> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("timed out after {timeout:?}")),
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            sender,
            conn,
            done: false,
            reused: false,
        })
    }

    /// Drives the connection's I/O; `Ready` once it has finished, with its
    /// error if it failed.
    pub fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<Option<hyper::Error>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.conn).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.done = true;
                Poll::Ready(r.err())
            }
        }
    }

    /// Drives the connection alongside `poll`, which gets the context
    /// after the connection had its turn.
    pub fn poll_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut SendRequest<ProxyBody>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let _ = self.poll_drive(cx);
        poll(&mut self.sender, cx)
    }

    /// Whether it can carry another request (as far as is known now).
    pub fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = self.poll_drive(&mut cx);
        !self.done && !self.sender.is_closed()
    }
}

/// Idle connections by (route id, upstream index), with when they idled.
type Idle = HashMap<(usize, usize), Vec<(Conn, Instant)>>;

thread_local! {
    static RUNTIME: OnceCell<Runtime> = const { OnceCell::new() };
    static IDLE: RefCell<Idle> = RefCell::new(HashMap::new());
}

/// Runs `fut` to completion on this thread's runtime (started on first use).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    RUNTIME.with(|cell| {
        let rt = cell.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime needs no resources that can fail")
        });
        rt.block_on(fut)
    })
}

/// An idle connection of this thread for `key` (route id, upstream index).
pub fn take(key: (usize, usize)) -> Option<Conn> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.get_mut(&key)?;
        // One clock reading per call, not one per idle connection.
        let now = Instant::now();
        while let Some((mut conn, since)) = list.pop() {
            if now.saturating_duration_since(since) < POOL_IDLE && conn.reusable() {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    })
}

/// Keeps `conn` for the next request of this thread to the same upstream.
pub fn give_back(key: (usize, usize), mut conn: Conn) {
    if !conn.reusable() {
        return;
    }
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = idle.entry(key).or_default();
        let now = Instant::now();
        list.retain(|(_, since)| now.saturating_duration_since(*since) < POOL_IDLE);
        if list.len() < POOL_PER_THREAD {
            list.push((conn, now));
        }
    });
}
