//! When the runtime counts as busy (`LoopWaiter::busy`): the loop waits in
//! it only then, so a task it does not count would never run, and one it
//! counts for nothing would cost every turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::NativeRuntime;
use crate::io::service::LoopWaiter;

/// Turns of the loop, without a loop: wait in the runtime briefly.
fn turn(rt: &NativeRuntime) {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    rt.wait(
        std::os::fd::AsRawFd::as_raw_fd(&a),
        Duration::from_millis(5),
    );
}

#[test]
fn idle_held_running_and_finished() {
    let rt = Arc::new(NativeRuntime::new().unwrap());
    assert!(!rt.busy(), "a new runtime has nothing to do");
    let go = Arc::new(Notify::new());
    let done = Arc::new(AtomicBool::new(false));
    let (g, d) = (go.clone(), done.clone());
    rt.spawn(async move {
        g.notified().await;
        d.store(true, Ordering::SeqCst);
    });
    assert!(rt.busy(), "a held task is work");
    turn(&rt);
    assert!(rt.busy(), "a task waiting inside is work");
    // Woken from outside the runtime: still busy until it has run.
    go.notify_one();
    assert!(rt.busy());
    turn(&rt);
    assert!(done.load(Ordering::SeqCst));
    assert!(!rt.busy(), "finished: idle again");
}

#[test]
fn resident_tasks_are_not_work_until_they_end_or_are_woken() {
    let rt = Arc::new(NativeRuntime::new().unwrap());
    let stop = Arc::new(Notify::new());
    let s = stop.clone();
    rt.spawn_resident(async move { s.notified().await });
    assert!(rt.busy(), "held until a thread enters: it must run once");
    turn(&rt);
    assert!(
        !rt.busy(),
        "waiting, resident: the loop's own epoll stands in"
    );
    stop.notify_one();
    assert!(rt.busy(), "woken: it must run");
    turn(&rt);
    assert!(!rt.busy(), "ended: no longer counted");
    // A task spawned now is work, counted against no resident.
    let again = Arc::new(Notify::new());
    let a = again.clone();
    rt.spawn(async move { a.notified().await });
    turn(&rt);
    assert!(rt.busy());
}
