//! Native routes (`crates/native`) in a real event loop and pool, without
//! Python: `--static` and `--proxy` prefixes are answered by Rust, every
//! other path still reaches the (fake) application, and a connection that
//! mixes both, pipelined or not, stays in order and in sync. The proxy's
//! upstream is a second test server whose fake app echoes the target it
//! got (or the body, on `/echo`).

#[path = "../../io/tests/io_support/mod.rs"]
mod io_support;

use std::sync::Arc;

use io_support::*;
use qiao_native::routes::NativeConfig;

/// A directory with a few files, kept for the test's life.
struct Tree(std::path::PathBuf);

impl Tree {
    fn new(name: &str) -> Tree {
        let top = std::env::temp_dir().join(format!("qiao-native-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&top);
        std::fs::create_dir_all(top.join("pub/sub")).unwrap();
        std::fs::write(top.join("secret.txt"), b"secret").unwrap();
        std::fs::write(top.join("pub/hello.txt"), b"hello native\n").unwrap();
        std::fs::write(top.join("pub/big.bin"), pattern(300_000)).unwrap();
        std::fs::write(top.join("pub/sub/index.html"), b"<p>index</p>").unwrap();
        Tree(top)
    }

    fn public(&self) -> String {
        self.0.join("pub").to_string_lossy().into_owned()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn native_server(config: NativeConfig) -> Server {
    let routes = Arc::new(config.build(None, None).expect("valid native config"));
    Server::with(move |c| c.native = Some(routes))
}

fn static_server(tree: &Tree) -> Server {
    native_server(NativeConfig {
        statics: vec![("/static".into(), tree.public())],
        ..Default::default()
    })
}

#[test]
fn static_files_and_the_app_share_a_connection() {
    let tree = Tree::new("share");
    let srv = static_server(&tree);
    for feed in FEEDS {
        let mut c = srv.connect();
        let r = c.roundtrip(&get("/static/hello.txt"), feed);
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.body, b"hello native\n");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        // Not under the prefix (a whole segment): the application.
        assert_eq!(
            c.roundtrip(&get("/staticx/hello.txt"), feed).text(),
            "/staticx/hello.txt"
        );
        assert_eq!(c.roundtrip(&get("/other"), feed).text(), "/other");
    }
    assert_eq!(
        srv.state.served.load(std::sync::atomic::Ordering::SeqCst),
        2 * FEEDS.len()
    );
}

#[test]
fn pipelined_native_and_app_requests_keep_their_order() {
    let tree = Tree::new("pipe");
    let srv = static_server(&tree);
    let mut c = srv.connect();
    let mut all = get("/static/hello.txt");
    all.extend(get("/a"));
    all.extend(get("/static/big.bin"));
    all.extend(get("/b"));
    c.send(&all, Feed::Whole);
    assert_eq!(c.response().body, b"hello native\n");
    assert_eq!(c.response().text(), "/a");
    assert_eq!(c.response().body, pattern(300_000));
    assert_eq!(c.response().text(), "/b");
}

#[test]
fn ranges_validators_and_directories() {
    let tree = Tree::new("range");
    let srv = static_server(&tree);
    let mut c = srv.connect();
    let req = b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n";
    let r = c.roundtrip(req, Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 206 Partial Content");
    assert_eq!(r.header("content-range"), Some("bytes 10-19/300000"));
    assert_eq!(r.body, &pattern(300_000)[10..20]);
    let etag = r.header("etag").unwrap().to_string();
    let req = format!("GET /static/big.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n");
    let r = c.roundtrip(req.as_bytes(), Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 304 Not Modified");
    assert!(r.body.is_empty());
    let r = c.roundtrip(&get("/static/sub?x=1"), Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 301 Moved Permanently");
    assert_eq!(r.header("location"), Some("/static/sub/?x=1"));
    assert_eq!(
        c.roundtrip(&get("/static/sub/"), Feed::Whole).body,
        b"<p>index</p>"
    );
}

#[test]
fn no_way_out_of_the_directory() {
    let tree = Tree::new("out");
    let srv = static_server(&tree);
    for (target, status) in [
        ("/static/../secret.txt", "404"),
        ("/static/%2e%2e/secret.txt", "404"),
        ("/static/..%2fsecret.txt", "400"),
        ("/static/a%00b", "400"),
        ("/static/.hidden", "404"),
        ("/static/missing", "404"),
    ] {
        let mut c = srv.connect();
        let r = c.roundtrip(&get(target), Feed::Whole);
        assert!(
            r.status_line.contains(status),
            "{target}: {}",
            r.status_line
        );
        assert!(!r.text().contains("secret"), "{target}");
    }
}

#[test]
fn a_refused_body_is_skipped_and_the_connection_stays_in_sync() {
    let tree = Tree::new("post");
    let srv = static_server(&tree);
    let mut c = srv.connect();
    let r = c.roundtrip(&post("/static/hello.txt", &pattern(5000)), Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(c.roundtrip(&get("/next"), Feed::Whole).text(), "/next");
}

#[test]
fn proxied_requests_reach_the_upstream_in_order() {
    let upstream = Server::start();
    let srv = native_server(NativeConfig {
        proxies: vec![
            ("/up".into(), vec![format!("http://{}", upstream.addr)]),
            ("/b".into(), vec![format!("http://{}/base", upstream.addr)]),
        ],
        ..Default::default()
    });
    let mut c = srv.connect();
    // Without a body (the proxy thread) and with one (the serving thread),
    // pipelined with application requests.
    let mut all = get("/b/x?q=1");
    all.extend(get("/local"));
    all.extend(post("/up/echo", b"a body"));
    all.extend(get("/b"));
    c.send(&all, Feed::Whole);
    let r = c.response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.text(), "/base/x?q=1");
    assert_eq!(c.response().text(), "/local");
    assert_eq!(c.response().text(), "a body");
    assert_eq!(c.response().text(), "/base");
    let big = pattern(1 << 20);
    let r = c.roundtrip(&post("/up/echo", &big), Feed::Split(7));
    assert_eq!(r.body, big);
}

#[test]
fn an_unreachable_upstream_is_a_502_naming_it() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let srv = native_server(NativeConfig {
        proxies: vec![("/".into(), vec![url.clone()])],
        ..Default::default()
    });
    let mut c = srv.connect();
    let r = c.roundtrip(&get("/x"), Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 502 Bad Gateway");
    assert!(
        r.text().contains(&url) && r.text().contains("cannot connect"),
        "{}",
        r.text()
    );
    // The connection stays usable.
    assert_eq!(
        c.roundtrip(&get("/y"), Feed::Whole).status_line,
        "HTTP/1.1 502 Bad Gateway"
    );
}

#[test]
fn bad_settings_are_refused_before_serving() {
    let missing = NativeConfig {
        statics: vec![("/s".into(), "/no/such/dir/qiao".into())],
        ..Default::default()
    };
    assert!(missing.build(None, None).is_err());
    let bad_url = NativeConfig {
        proxies: vec![("/p".into(), vec!["https://example.com".into()])],
        ..Default::default()
    };
    assert!(bad_url.build(None, None).is_err());
    let twice = NativeConfig {
        proxies: vec![
            ("/p".into(), vec!["http://127.0.0.1:1".into()]),
            ("/p/".into(), vec!["http://127.0.0.1:2".into()]),
        ],
        ..Default::default()
    };
    assert!(twice.build(None, None).is_err());
}

#[test]
fn a_drain_waits_for_proxied_requests_in_flight() {
    let upstream = Server::start();
    let srv = native_server(NativeConfig {
        proxies: vec![("/".into(), vec![format!("http://{}", upstream.addr)])],
        ..Default::default()
    });
    let mut c = srv.connect();
    // `/gather?2` with one request: the upstream holds it until its
    // timeout, then answers `timeout`.
    c.send(&get("/gather?2"), Feed::Whole);
    while upstream
        .state
        .served
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    srv.drain();
    let r = c.response();
    assert_eq!(r.text(), "timeout");
    assert!(srv.finished_within(std::time::Duration::from_secs(10)));
}

#[test]
fn a_client_that_stops_reading_a_file_holds_no_thread() {
    let tree = Tree::new("slow");
    // Far more than the socket buffers hold.
    std::fs::write(tree.0.join("pub/huge.bin"), vec![7u8; 64 << 20]).unwrap();
    let routes = NativeConfig {
        statics: vec![("/static".into(), tree.public())],
        ..Default::default()
    }
    .build(None, None)
    .unwrap();
    let routes = Arc::new(routes);
    // One thread, and a stall allowed longer than the client's patience:
    // were the thread waiting on the slow client, the second would time out.
    let srv = Server::with_threads_and(1, move |c| {
        c.native = Some(routes);
        c.io_timeout = std::time::Duration::from_secs(60);
    });
    let mut slow = srv.connect();
    slow.send(&get("/static/huge.bin"), Feed::Whole);
    assert!(slow.head_only().starts_with("HTTP/1.1 200"));
    let mut other = srv.connect();
    assert_eq!(other.roundtrip(&get("/app"), Feed::Whole).text(), "/app");
    let r = other.roundtrip(&get("/static/hello.txt"), Feed::Whole);
    assert_eq!(r.body, b"hello native\n");
}

#[test]
fn hidden_names_and_type_overrides() {
    use qiao_native::static_files::StaticOptions;
    let tree = Tree::new("opts");
    std::fs::write(tree.0.join("pub/.env"), b"dot").unwrap();
    std::fs::write(tree.0.join("pub/notes.md"), b"# notes").unwrap();
    let config = |hidden| NativeConfig {
        statics: vec![("/static".into(), tree.public())],
        static_options: StaticOptions {
            hidden,
            types: vec![(".md".into(), "text/x-notes".into())],
            ..Default::default()
        },
        ..Default::default()
    };
    let shy = native_server(config(false));
    let mut c = shy.connect();
    assert_eq!(
        c.roundtrip(&get("/static/.env"), Feed::Whole).status_line,
        "HTTP/1.1 404 Not Found"
    );
    let r = c.roundtrip(&get("/static/notes.md"), Feed::Whole);
    assert_eq!(
        r.header("content-type"),
        Some("text/x-notes; charset=utf-8")
    );
    let open = native_server(config(true));
    let mut c = open.connect();
    let r = c.roundtrip(&get("/static/.env"), Feed::Whole);
    assert_eq!(
        (r.status_line.as_str(), r.body.as_slice()),
        ("HTTP/1.1 200 OK", &b"dot"[..])
    );
    // Still no way out.
    assert_eq!(
        c.roundtrip(&get("/static/../secret.txt"), Feed::Whole)
            .status_line,
        "HTTP/1.1 404 Not Found"
    );
}

/// Every request a native route answers leaves one access record, on the
/// runtime's path (a file, a proxied GET) and the blocking one (a proxied
/// POST), with its status and body bytes; the application's leave none
/// (the WSGI side logs those).
#[test]
fn native_requests_leave_access_records() {
    use qiao_io::record::AccessQueue;
    let tree = Tree::new("access");
    let upstream = Server::start();
    let queue = Arc::new(AccessQueue::new(
        Some(vec!["Host".into()]),
        Default::default(),
    ));
    let srv = native_server(NativeConfig {
        statics: vec![("/static".into(), tree.public())],
        proxies: vec![("/p".into(), vec![format!("http://{}", upstream.addr)])],
        access: Some(queue.clone()),
        ..Default::default()
    });
    let mut c = srv.connect();
    let mut bodies = Vec::new();
    for req in [
        get("/static/hello.txt?v=1"),
        get("/static/missing"),
        get("/p/x"),
        post("/p/echo", b"12345"),
        get("/app"),
    ] {
        bodies.push(c.roundtrip(&req, Feed::Whole).body.len() as u64);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while queue.len() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut records = queue.next_batch(std::time::Duration::ZERO);
    records.sort_by(|a, b| a.target.cmp(&b.target));
    let seen: Vec<(String, &[u8], u16, u64)> = records
        .iter()
        .map(|r| {
            let target = String::from_utf8_lossy(&r.target).into_owned();
            (target, r.method.as_slice(), r.status, r.sent)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/p/echo".to_string(), &b"POST"[..], 200, bodies[3]),
            ("/p/x".to_string(), &b"GET"[..], 200, bodies[2]),
            ("/static/hello.txt?v=1".to_string(), &b"GET"[..], 200, 13),
            ("/static/missing".to_string(), &b"GET"[..], 404, bodies[1]),
        ]
    );
    let hello = &records[2];
    assert_eq!(
        (hello.path.as_slice(), hello.query.as_slice()),
        (&b"/static/hello.txt"[..], &b"v=1"[..])
    );
    assert_eq!(hello.protocol, "HTTP/1.1");
    // Only the fields asked for, names in lower case.
    assert_eq!(hello.headers, vec![(b"host".to_vec(), b"t".to_vec())]);
    assert_eq!(queue.take_dropped(), 0);
}
