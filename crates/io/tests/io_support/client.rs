//! The blocking HTTP client of the io test harness (`io_support`): raw
//! bytes in, parsed responses out, with the three feeding modes the
//! project asks for (whole, byte by byte, random splits).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use super::CLIENT_TIMEOUT;

/// Reads one Content-Length-framed response: (status line, body).
pub fn read_response(r: &mut impl BufRead) -> (String, Vec<u8>) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status.trim_end().to_string(), body)
}

/// How a request's bytes are written.
#[derive(Clone, Copy, Debug)]
pub enum Feed {
    Whole,
    /// One byte per write, with a short sleep between writes.
    ByteByByte,
    /// Pieces cut at random points drawn from this seed.
    Split(u64),
}

/// The feeding modes most tests run through.
pub const FEEDS: [Feed; 5] = [
    Feed::Whole,
    Feed::ByteByByte,
    Feed::Split(1),
    Feed::Split(42),
    Feed::Split(0xDEAD_BEEF),
];

#[path = "../../../http/tests/common/cuts.rs"]
mod cuts;
pub use cuts::random_cuts;

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
pub struct Client {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            stream: s,
        }
    }

    pub fn send(&mut self, bytes: &[u8], feed: Feed) {
        match feed {
            Feed::Whole => self.stream.write_all(bytes).unwrap(),
            Feed::ByteByByte => {
                for b in bytes {
                    self.stream.write_all(std::slice::from_ref(b)).unwrap();
                    self.stream.flush().unwrap();
                    thread::sleep(Duration::from_micros(300));
                }
            }
            Feed::Split(seed) => {
                let mut at = 0;
                for cut in random_cuts(bytes.len(), seed)
                    .into_iter()
                    .chain([bytes.len()])
                {
                    self.stream.write_all(&bytes[at..cut]).unwrap();
                    self.stream.flush().unwrap();
                    thread::sleep(Duration::from_millis(2));
                    at = cut;
                }
            }
        }
    }

    fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("read line");
        assert!(line.ends_with(b"\r\n"), "truncated line {line:?}");
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("utf-8 head")
    }

    /// Reads one response (Content-Length framed or none at all).
    pub fn response(&mut self) -> Response {
        let status_line = self.line();
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header colon");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut r = Response {
            status_line,
            headers,
            body: Vec::new(),
        };
        let len = r.header("content-length").map_or(0, |n| n.parse().unwrap());
        r.body.resize(len, 0);
        self.reader.read_exact(&mut r.body).expect("response body");
        r
    }

    /// Reads the head of a response to HEAD (no body follows), as text.
    pub fn head_only(&mut self) -> String {
        let mut head = String::new();
        loop {
            let line = self.line();
            head.push_str(&line);
            head.push_str("\r\n");
            if line.is_empty() {
                return head;
            }
        }
    }

    /// Sends a request and reads its response.
    pub fn roundtrip(&mut self, bytes: &[u8], feed: Feed) -> Response {
        self.send(bytes, feed);
        self.response()
    }

    /// True when the server closed the connection (EOF or reset) with
    /// nothing more to read; panics on extra bytes or on the timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Ok(_) => panic!("unexpected byte {:?} instead of EOF", b[0] as char),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Err(e) => panic!("no EOF: {e}"),
        }
    }

    /// True when nothing arrives within `d` (the connection stays open).
    pub fn silent_for(&mut self, d: Duration) -> bool {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let silent = matches!(self.reader.read(&mut [0u8; 1]), Err(e)
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));
        self.stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        silent
    }
}

/// A GET request for `target`.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// GETs `target` on `c` and returns the response body as text.
pub fn ask(c: &mut Client, target: &str) -> String {
    c.roundtrip(&get(target), Feed::Whole).text()
}

/// A POST with a Content-Length body.
pub fn post(target: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A POST with a chunked body cut into `pieces` (extensions and a trailer
/// included, which the decoder must drop).
pub fn post_chunked(target: &str, pieces: &[&[u8]]) -> Vec<u8> {
    let mut r = format!("POST {target} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .into_bytes();
    for (i, p) in pieces.iter().enumerate() {
        let ext = if i % 2 == 1 { ";name=value" } else { "" };
        r.extend_from_slice(format!("{:x}{ext}\r\n", p.len()).as_bytes());
        r.extend_from_slice(p);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    r
}

/// Deterministic body bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}
