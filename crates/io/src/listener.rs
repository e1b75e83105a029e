//! Listening sockets handed over by the Python side as file descriptors
//! (Python binds them, so the future pre-fork supervisor can share them
//! with its workers), and the per-listener facts the environ needs.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A listening socket of either family.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// An accepted connection.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// What the environ says about the socket a request came in on.
#[derive(Clone, Debug)]
pub struct ListenerInfo {
    /// `SERVER_NAME` when the request has no Host.
    pub server_name: String,
    /// `SERVER_PORT` when the request has no Host port.
    pub server_port: String,
    /// Requests come by the uwsgi protocol rather than HTTP.
    pub uwsgi: bool,
}

/// The client end of a connection, as the environ shows it.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    pub addr: String,
    pub port: String,
    /// The peer's address (`None` on a Unix socket).
    pub ip: Option<std::net::IpAddr>,
    /// The peer is a trusted proxy (`--forwarded-allow-ips`): its
    /// forwarding headers describe the client.
    pub trusted: bool,
    /// The client connected with TLS (through the protocol front).
    pub tls: Option<std::sync::Arc<TlsFacts>>,
    /// The request came over HTTP/2 (through the protocol front).
    pub http2: bool,
}

/// What the environ says about a TLS connection (mod_ssl's names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// `SSL_PROTOCOL`: `TLSv1.2` or `TLSv1.3`.
    pub protocol: String,
    /// `SSL_CIPHER`: the IANA name of the cipher suite.
    pub cipher: String,
    /// `SSL_CLIENT_S_DN`: the verified client certificate's subject, if
    /// the client sent one.
    pub client_subject: Option<String>,
    /// `SSL_CLIENT_CERT`: that certificate, PEM-encoded.
    pub client_cert_pem: Option<String>,
}

impl Listener {
    /// Takes a duplicate of `fd`, so each event-loop thread owns (and
    /// closes) its own descriptor for the shared socket.
    pub fn from_shared_fd(fd: RawFd, unix: bool) -> io::Result<Listener> {
        // SAFETY: dup of a valid listening fd the caller keeps open.
        let own = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if own < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(if unix {
            // SAFETY: `own` is a fresh fd we now own.
            let l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(own) };
            l.set_nonblocking(true)?;
            Listener::Unix(UnixListener::from_std(l))
        } else {
            // SAFETY: as above.
            let l = unsafe { std::net::TcpListener::from_raw_fd(own) };
            l.set_nonblocking(true)?;
            Listener::Tcp(TcpListener::from_std(l))
        })
    }

    /// A duplicate of the TCP listening socket `fd` as a std listener
    /// (for the protocol front, which accepts TLS connections itself).
    pub fn dup_tcp(fd: RawFd) -> io::Result<std::net::TcpListener> {
        // SAFETY: dup of a valid listening fd the caller keeps open.
        let own = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if own < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `own` is a fresh fd we now own.
        Ok(unsafe { std::net::TcpListener::from_raw_fd(own) })
    }

    pub fn info(&self) -> ListenerInfo {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => ListenerInfo {
                    server_name: addr.ip().to_string(),
                    server_port: addr.port().to_string(),
                    uwsgi: false,
                },
                Err(_) => ListenerInfo {
                    server_name: "localhost".into(),
                    server_port: "80".into(),
                    uwsgi: false,
                },
            },
            Listener::Unix(l) => ListenerInfo {
                server_name: l
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_else(|| "localhost".into()),
                server_port: String::new(),
                uwsgi: false,
            },
        }
    }

    /// Accepts one connection (non-blocking): `WouldBlock` when none waits.
    pub fn accept(&self) -> io::Result<(Stream, PeerInfo)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept()?;
                // Responses are written whole; Nagle would only delay them.
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), peer_of(addr)))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), PeerInfo::default()))
            }
        }
    }
}

pub fn peer_of(addr: SocketAddr) -> PeerInfo {
    let ip = match addr {
        SocketAddr::V4(a) => std::net::IpAddr::V4(*a.ip()),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(*a.ip()),
        },
    };
    PeerInfo {
        addr: ip.to_string(),
        port: addr.port().to_string(),
        ip: Some(ip),
        ..PeerInfo::default()
    }
}

impl Stream {
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }

    pub fn fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Listener {
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l) => l,
        }
    }
}
