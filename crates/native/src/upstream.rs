//! The upstream servers of one native proxy route: their addresses, and
//! the I/O around [`policy`]'s rules (the choice of one per request, round
//! robin or least connections; marking one down and up again; when to
//! probe), which are the portable `upstream.py`'s, so both balance and
//! fail over alike. Connections and their pooling are the proxy's
//! (`proxy/spawned.rs`).
//!
//! The policy lives under one mutex, held only for a few comparisons. A
//! probe thread runs while some server is down: when the policy says so it
//! tries each down server, and the policy marks one up when its probe
//! succeeds: a TCP connect, or with `--proxy-health-path PATH` a `GET` of
//! the server's base path plus PATH answered with a status below 500 (the
//! portable `health_path`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use qiao_http::upstream_head;

pub mod policy;

pub use policy::{Balance, Verdict, MAX_FAILS, PROBE_INTERVAL};
use policy::{Policy, ProbeStep, State};

/// Seconds allowed to open a TCP connection to an upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One upstream server, as configured.
#[derive(Debug)]
pub struct Server {
    /// The URL as given (for messages and the status page).
    pub url: String,
    /// `host:port` as given: the `Host` sent and the client's authority.
    pub netloc: String,
    /// The URL's path without a trailing `/`, prepended to every target.
    pub base_path: String,
}

impl Server {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Server, String> {
        let bad = || format!("upstream {url:?}: only http://host[:port][/path] is supported");
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        if rest.contains(['?', '#']) {
            return Err(format!("upstream {url:?}: no query or fragment allowed"));
        }
        let (netloc, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let uri: hyper::Uri = format!("http://{netloc}/").parse().map_err(|_| bad())?;
        if uri.host().is_none_or(str::is_empty) || netloc.contains('@') {
            return Err(bad());
        }
        Ok(Server {
            url: url.to_string(),
            netloc: netloc.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host:port` to connect to (port 80 when none is given).
    pub fn address(&self) -> String {
        let uri: hyper::Uri = format!("http://{}/", self.netloc)
            .parse()
            .expect("checked in parse");
        let host = uri.host().unwrap_or_default();
        format!("{host}:{}", uri.port_u16().unwrap_or(80))
    }
}

/// The servers behind one proxy route and the policy that picks among them.
pub struct Upstreams {
    pub servers: Vec<Server>,
    connect_timeout: Duration,
    /// Probe with a `GET` of this path (below each server's base path)
    /// rather than a TCP connect.
    health_path: Option<String>,
    policy: Mutex<Policy>,
}

impl Upstreams {
    pub fn new(
        servers: Vec<Server>,
        balance: Balance,
        max_fails: u32,
        probe_interval: Duration,
        connect_timeout: Duration,
        health_path: Option<String>,
    ) -> Upstreams {
        let policy = Policy::new(servers.len(), balance, max_fails, probe_interval);
        Upstreams {
            servers,
            connect_timeout,
            health_path,
            policy: Mutex::new(policy),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Policy> {
        self.policy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Picks a server not in `tried` and counts a request on it
    /// ([`Policy::pick`]).
    pub fn acquire(&self, tried: &[usize]) -> Option<usize> {
        self.lock().pick(tried)
    }

    /// The request on server `index` is over ([`Policy::release`]); starts
    /// the probe thread if it marked the first server down.
    pub fn release(self: &Arc<Self>, index: usize, verdict: Verdict) {
        let mut policy = self.lock();
        if policy.release(index, verdict, Instant::now()) {
            let me = self.clone();
            let started = std::thread::Builder::new()
                .name("qiao-proxy-probe".into())
                .spawn(move || me.probe_loop());
            if started.is_err() {
                policy.prober_gone();
            }
        }
    }

    fn probe_loop(self: Arc<Self>) {
        loop {
            let step = self.lock().probe_step(Instant::now());
            let down = match step {
                ProbeStep::Wait(time) => {
                    std::thread::sleep(time);
                    continue;
                }
                ProbeStep::Probe(down) => down,
                ProbeStep::Stop => return,
            };
            for i in down {
                let up = self.probe(i);
                self.lock().probed(i, up);
            }
            self.lock().probes_over(Instant::now());
        }
    }

    /// Whether server `index` answers (see the module doc).
    fn probe(&self, index: usize) -> bool {
        let addrs = self.servers[index].address().to_socket_addrs();
        self.probe_addrs(index, addrs.into_iter().flatten())
    }

    /// Whether server `index`, at `addrs`, answers: judged on the first
    /// address that accepts a connection, the one the proxy's requests go
    /// to (`UpConn::open`, as the portable probe's `http.client`), not on
    /// whichever address answers well.
    fn probe_addrs(&self, index: usize, addrs: impl IntoIterator<Item = SocketAddr>) -> bool {
        let server = &self.servers[index];
        let Some(stream) = addrs
            .into_iter()
            .find_map(|a| TcpStream::connect_timeout(&a, self.connect_timeout).ok())
        else {
            return false;
        };
        match &self.health_path {
            None => true,
            Some(path) => {
                let target = format!("{}{path}", server.base_path);
                health_status(stream, &server.netloc, &target, self.connect_timeout)
                    .is_some_and(policy::probe_status_up)
            }
        }
    }

    /// Each server's state as a JSON array (`url`, `up`, `active`,
    /// `failures`), as the portable `Proxy.states()` reports it.
    pub(crate) fn states_json(&self, out: &mut String) {
        let policy = self.lock();
        for (s, h) in self.servers.iter().zip(policy.health()) {
            if !out.ends_with('[') {
                out.push_str(", ");
            }
            out.push_str(&format!(
                "{{\"url\": {}, \"up\": {}, \"active\": {}, \"failures\": {}}}",
                json_string(&s.url),
                h.state == State::Up,
                h.active,
                h.failures
            ));
        }
    }
}

/// The status of the final answer a `GET` of `target` gets on `stream`:
/// interim (1xx) heads skipped, up to [`policy::PROBE_MAX_INTERIM`]. None:
/// no valid final head within `timeout` per read or write. The portable
/// probe (`upstream.health_status`) answers the same; both run the
/// `health_answers` cases of `tests/cases/upstream.json`.
pub fn health_status(
    mut stream: TcpStream,
    host: &str,
    target: &str,
    timeout: Duration,
) -> Option<u16> {
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    // The head as the proxy reads an upstream's (the HTTP ring's parser,
    // its limits): a complete, valid head.
    let mut buf = Vec::new();
    let mut piece = [0u8; 1024];
    let mut interim = 0;
    loop {
        while let Some(head) = upstream_head::parse(&buf, false).ok()? {
            if !head.is_interim() {
                return Some(head.status);
            }
            interim += 1;
            if interim > policy::PROBE_MAX_INTERIM {
                return None;
            }
            buf.drain(..head.len);
        }
        let n = stream.read(&mut piece).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&piece[..n]);
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering `answer`; returns its address and a
    /// handle yielding the request it got.
    fn answering(answer: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut piece = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut piece).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&piece[..n]);
            }
            s.write_all(answer).unwrap();
            String::from_utf8(got).unwrap()
        });
        (addr, handle)
    }

    fn status_of(answer: &'static [u8]) -> (Option<u16>, String) {
        let (addr, handle) = answering(answer);
        let stream = TcpStream::connect(&addr).unwrap();
        let status = health_status(stream, "up:1", "/base/health", Duration::from_secs(5));
        (status, handle.join().unwrap())
    }

    #[test]
    fn health_probe_reads_the_status() {
        let (status, request) = status_of(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(status, Some(204));
        assert!(
            request.starts_with("GET /base/health HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nHost: up:1\r\n"), "{request}");
        assert_eq!(status_of(b"HTTP/1.0 503\r\n\r\n").0, Some(503));
        assert_eq!(status_of(b"garbage\r\n\r\n").0, None);
        assert_eq!(status_of(b"").0, None);
    }

    /// A down server is marked up again only once its health path answers
    /// below 500; with no health path, a connect is enough.
    #[test]
    fn probe_uses_the_health_path() {
        let probe = |answer: &'static [u8], health: Option<&str>| {
            let (addr, handle) = answering(answer);
            let server = Server::parse(&format!("http://{addr}/base/")).unwrap();
            let ups = Upstreams::new(
                vec![server],
                Balance::RoundRobin,
                1,
                PROBE_INTERVAL,
                CONNECT_TIMEOUT,
                health.map(str::to_string),
            );
            let up = ups.probe(0);
            drop(ups);
            (up, handle.join().unwrap_or_default())
        };
        let (up, request) = probe(b"HTTP/1.1 200 OK\r\n\r\n", Some("/health"));
        assert!(up);
        assert!(request.starts_with("GET /base/health "), "{request}");
        assert!(probe(b"HTTP/1.1 404 Not Found\r\n\r\n", Some("/health")).0);
        assert!(!probe(b"HTTP/1.1 500 Oops\r\n\r\n", Some("/health")).0);
        assert!(!probe(b"HTTP/1.1 503 Busy\r\n\r\n", Some("/health")).0);
    }

    /// A host with several addresses is judged on the first that accepts
    /// (where requests go), not on any that answers well.
    #[test]
    fn probe_judges_the_first_address_that_accepts() {
        let (sick, sick_handle) = answering(b"HTTP/1.1 503 Busy\r\n\r\n");
        let (well, well_handle) = answering(b"HTTP/1.1 200 OK\r\n\r\n");
        let refused = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let server = Server::parse(&format!("http://{well}/")).unwrap();
        let ups = Upstreams::new(
            vec![server],
            Balance::RoundRobin,
            1,
            PROBE_INTERVAL,
            CONNECT_TIMEOUT,
            Some("/health".into()),
        );
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(!ups.probe_addrs(0, [addr(&sick), addr(&well)]));
        sick_handle.join().unwrap();
        assert!(ups.probe_addrs(0, [refused, addr(&well)]));
        well_handle.join().unwrap();
    }
}
