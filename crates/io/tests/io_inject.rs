//! Requests the front hands the loop in memory (`Inbox::inject`) for the
//! internal connections it holds, on a real loop with the fake application
//! of `io_support`: they are served as if read from the connection, the
//! answer written to its socket; one injected while its connection is out
//! in a job is served when the job returns; and one injected for a
//! connection the loop has closed is dropped, never given to the
//! connection that took its slot.

mod io_support;

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};

use io_support::{read_response as response, Server, CLIENT_TIMEOUT};
use qiao_io::inbox::{Adopted, Inbox};
use qiao_io::{ListenerInfo, PeerInfo};

/// A server with an inbox attached; the loop's index of its listener info.
fn server_with_inbox(inbox: &Arc<Inbox>) -> (Server, usize) {
    let info = ListenerInfo {
        server_name: "front".into(),
        server_port: "8443".into(),
        uwsgi: false,
    };
    Server::with_inbox(inbox, info)
}

/// Says on `tx` when the loop lets go of the connection holding it.
struct Closed(mpsc::Sender<()>);

impl Drop for Closed {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A socket pair whose loop end is adopted under a new pair id: our end
/// (reading the answers), the id, and what tells of its close.
fn adopt(inbox: &Inbox, base: usize) -> (BufReader<UnixStream>, u64, mpsc::Receiver<()>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let id = inbox.pair_id();
    let (tx, closed) = mpsc::channel();
    let mut adopted = Adopted::pair(theirs, PeerInfo::default(), base);
    adopted.pair_id = Some(id);
    adopted.held = Some(Box::new(Closed(tx)));
    inbox.push(adopted);
    (BufReader::new(ours), id, closed)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

#[test]
fn injected_requests_are_answered_over_the_connection() {
    let inbox = Arc::new(Inbox::default());
    let (_srv, base) = server_with_inbox(&inbox);
    let (mut ours, id, _closed) = adopt(&inbox, base);
    for path in ["/a", "/b", "/c"] {
        inbox.inject(id, get(path));
        let (status, body) = response(&mut ours);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, path.as_bytes());
    }
}

#[test]
fn a_request_injected_while_its_connection_is_out_is_served_on_return() {
    let inbox = Arc::new(Inbox::default());
    let (srv, base) = server_with_inbox(&inbox);
    let (mut ours, id, _closed) = adopt(&inbox, base);
    // Answered, then the connection stays out in its job until released.
    inbox.inject(id, get("/answer-then-hold"));
    let (_, body) = response(&mut ours);
    assert_eq!(body, b"answered");
    inbox.inject(id, get("/next"));
    // Another connection, queued after that request and served meanwhile:
    // once it is answered, the loop has taken the request too, with its
    // connection still out.
    let (mut other, other_id, _other_closed) = adopt(&inbox, base);
    inbox.inject(other_id, get("/other"));
    assert_eq!(response(&mut other).1, b"/other");
    srv.state.release();
    let (status, body) = response(&mut ours);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, b"/next");
}

#[test]
fn a_request_for_a_closed_connection_reaches_no_other() {
    let inbox = Arc::new(Inbox::default());
    let (_srv, base) = server_with_inbox(&inbox);
    let (first, first_id, first_closed) = adopt(&inbox, base);
    drop(first); // the loop sees the end and closes its side
    first_closed.recv_timeout(CLIENT_TIMEOUT).unwrap();
    // The next connection takes the freed slot.
    let (mut second, second_id, _closed) = adopt(&inbox, base);
    inbox.inject(first_id, get("/for-the-first"));
    inbox.inject(second_id, get("/for-the-second"));
    let (_, body) = response(&mut second);
    assert_eq!(body, b"/for-the-second");
    // Nothing else was queued on it: the next answer is the next request's.
    inbox.inject(second_id, get("/again"));
    let (_, body) = response(&mut second);
    assert_eq!(body, b"/again");
}
