//! The runtime of the native services' asynchronous work
//! ([`NativeRuntime`]): a current-thread tokio runtime per worker, driven
//! by whichever thread leads the event loop, while it waits
//! ([`LoopWaiter`]): the loop's own epoll fd is one of the sockets the
//! runtime waits on, so a thread that leads waits for new requests,
//! upstream answers and room in client sockets alike, and a request served
//! this way costs no switch between threads. (A thread of its own for the
//! runtime was tried first: a switch to it and one back per request, a
//! third of the rate.) Also the client's socket as tasks write it
//! ([`Client`]): plain sends and `sendfile`, waiting through the runtime
//! only when the socket is full.
//!
//! A task is spawned by the thread that took the request, usually outside
//! the runtime; tokio then writes the runtime's eventfd to wake it, one
//! system call per request (`perf stat`: 5.2 per proxied request, nginx
//! 4.9). So a task is held in [`NativeRuntime::spawn`]'s list instead and
//! spawned from inside the next [`wait`](LoopWaiter::wait) or
//! [`tick`](LoopWaiter::tick), where it goes on the runtime's own queue
//! without a wake-up. The tasks only ever run inside those calls, so
//! nothing waits longer; only a spawn while a thread is inside one goes to
//! the runtime at once (and wakes it).

use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use qiao_io::answer::Wakes;
use qiao_io::handoff::{DoneSink, OpenJob};
use qiao_io::native_service::LoopWaiter;
use qiao_io::service::Outcome;
use qiao_io::wire::Wire;

/// A task not yet handed to the runtime.
type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// See the module doc.
pub struct NativeRuntime {
    rt: tokio::runtime::Runtime,
    /// The loop's poll fd, registered with the runtime on first wait.
    loop_fd: Mutex<Option<Arc<AsyncFd<Fd>>>>,
    /// Tasks spawned while no thread was inside the runtime.
    held: Mutex<Held>,
    /// Wake-ups put off until the runtime runs (`qiao_io::answer`).
    wakes: OnceLock<Arc<Wakes>>,
}

/// [`NativeRuntime::held`]: the flag is read and written under the same
/// lock as the list, so a task is either taken by the thread entering the
/// runtime or spawned straight into it, never left behind.
#[derive(Default)]
struct Held {
    tasks: Vec<Task>,
    /// Threads inside `wait` or `tick` (each took `tasks` on entry): the
    /// leader, and the pool's monitor when every thread is busy
    /// (`qiao_io::pool`).
    inside: usize,
}

impl NativeRuntime {
    pub fn new() -> std::io::Result<NativeRuntime> {
        Ok(NativeRuntime {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            loop_fd: Mutex::new(None),
            held: Mutex::new(Held::default()),
            wakes: OnceLock::new(),
        })
    }

    /// Wake-ups to give on every entry (the front's answers in memory):
    /// set once.
    pub fn run_wakes(&self, wakes: Arc<Wakes>) {
        let _ = self.wakes.set(wakes);
    }

    /// The runtime's handle: for registering sockets with it (inside
    /// `handle().enter()`), not for spawning (see [`spawn`](Self::spawn)).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// Runs `task` on the runtime (while a thread leads the loop): held
    /// until a thread enters the runtime, see the module doc.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.inside > 0 {
            drop(held);
            self.rt.spawn(task);
        } else {
            held.tasks.push(Box::pin(task));
        }
    }

    /// Runs `body` inside the runtime, the held tasks spawned first (from
    /// inside, so onto its own queue, with no wake-up), and the wake-ups
    /// put off given. `parks`: `body` waits (wake-ups must then reach it).
    fn enter<F: Future<Output = ()>>(&self, parks: bool, body: F) {
        let tasks = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.inside += 1;
            std::mem::take(&mut held.tasks)
        };
        let wakes = self.wakes.get();
        self.rt.block_on(async {
            for task in tasks {
                tokio::spawn(task);
            }
            if let Some(w) = wakes {
                // Only a thread that waits says so: another that only
                // ticks (the monitor) must not clear the flag of one
                // waiting meanwhile.
                if parks {
                    w.park(true);
                }
                w.run();
            }
            body.await
        });
        if let Some(w) = wakes.filter(|_| parks) {
            w.park(false);
        }
        self.held.lock().unwrap_or_else(|e| e.into_inner()).inside -= 1;
    }
}

impl LoopWaiter for NativeRuntime {
    fn wait(&self, poll_fd: RawFd, timeout: Duration) {
        self.enter(true, async {
            let registered = {
                let mut slot = self.loop_fd.lock().unwrap_or_else(|e| e.into_inner());
                match &*slot {
                    Some(afd) if afd.get_ref().0 == poll_fd => Some(afd.clone()),
                    _ => {
                        // SAFETY: the loop's epoll fd lives as long as the
                        // loop, which outlives this runtime's use.
                        let afd = unsafe {
                            AsyncFd::register_with_interest(Fd(poll_fd), Interest::READABLE)
                        };
                        *slot = afd.ok().map(Arc::new);
                        slot.clone()
                    }
                }
            };
            let Some(afd) = registered else {
                tokio::time::sleep(timeout.min(FALLBACK_WAIT)).await;
                return;
            };
            tokio::select! {
                guard = afd.readable() => {
                    // The loop collects every event next (or notes that it
                    // could not, and does not wait before collecting more).
                    if let Ok(mut guard) = guard {
                        guard.clear_ready();
                    }
                }
                _ = tokio::time::sleep(timeout) => {}
            }
        });
    }

    fn tick(&self) {
        self.run_ready();
    }

    /// Any task alive, held or spawned (by us or by a task: hyper's
    /// connection drivers and streams).
    fn busy(&self) -> bool {
        self.rt.metrics().num_alive_tasks() > 0
            || !self
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tasks
                .is_empty()
    }
}

impl NativeRuntime {
    /// Lets every ready task run once (and the runtime poll its sockets).
    fn run_ready(&self) {
        self.enter(false, tokio::task::yield_now());
    }
}

/// Longest wait when the loop's fd cannot be watched (then it is polled).
const FALLBACK_WAIT: Duration = Duration::from_millis(1);

/// The client's socket, borrowed while the job is out of the loop.
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The client's socket as the runtime's tasks write it: plain non-blocking
/// sends, registered with the runtime only once one would block (most
/// responses leave in one send, and registering costs two `epoll_ctl`s).
pub struct Client {
    wire: Wire,
    registered: Option<AsyncFd<Fd>>,
    /// Longest stall allowed.
    timeout: Duration,
    /// Bytes written (for the metrics).
    sent: u64,
}

impl Client {
    pub fn new(wire: Wire, timeout: Duration) -> Client {
        Client {
            wire,
            registered: None,
            timeout,
            sent: 0,
        }
    }

    /// Bytes written so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The socket, registered with the runtime (on first need).
    fn registered(&mut self) -> Option<&AsyncFd<Fd>> {
        if self.registered.is_none() {
            let interest = Interest::WRITABLE | Interest::READABLE;
            // SAFETY: the fd is the client socket the job owns; it stays
            // open until the job finishes, and `self` is dropped before.
            let afd = unsafe { AsyncFd::register_with_interest(Fd(self.wire.fd()), interest) };
            self.registered = Some(afd.ok()?);
        }
        self.registered.as_ref()
    }

    /// Waits until the socket may take more (false: timed out or failed).
    async fn writable(&mut self) -> bool {
        self.ready(Interest::WRITABLE).await
    }

    /// Waits until the client has sent more (false: timed out or failed),
    /// after a read found nothing.
    pub async fn readable(&mut self) -> bool {
        self.ready(Interest::READABLE).await
    }

    /// Waits for `interest` within the timeout. The readiness is cleared at
    /// once: the caller's next write or read, which finds out whether it
    /// still holds, always follows.
    async fn ready(&mut self, interest: Interest) -> bool {
        let timeout = self.timeout;
        let Some(afd) = self.registered() else {
            return false;
        };
        let Ok(Ok(mut guard)) = tokio::time::timeout(timeout, afd.ready(interest)).await else {
            return false;
        };
        guard.clear_ready();
        true
    }

    /// Sends `count` bytes of `file` from `offset` with `sendfile(2)`.
    pub async fn sendfile(&mut self, file: RawFd, mut offset: u64, count: u64) -> bool {
        let end = offset + count;
        while offset < end {
            let piece = (end - offset).min(SENDFILE_PIECE);
            match self.wire.sendfile_some(file, offset, piece) {
                Ok(Some(0)) => return false, // the file is shorter than promised
                Ok(Some(n)) => {
                    offset += n;
                    self.sent += n;
                }
                Ok(None) => {
                    if !self.writable().await {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Sets `TCP_CORK`, so a head and a `sendfile` body share segments.
    pub(crate) fn cork(&self, on: bool) {
        self.wire.set_cork(on);
    }

    /// Writes all of `buf`; empties it. False if the client went away or
    /// stalled past the timeout.
    pub async fn write_all(&mut self, buf: &mut Vec<u8>) -> bool {
        let mut off = 0;
        while off < buf.len() {
            match self.wire.write_some(&buf[off..]) {
                Ok(n) => {
                    off += n;
                    self.sent += n as u64;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            if !self.writable().await {
                return false;
            }
        }
        buf.clear();
        true
    }
}

/// Largest piece per `sendfile` call: keeps one call from holding the
/// thread (and the other tasks) for long.
const SENDFILE_PIECE: u64 = 1 << 20;

/// A job out on the runtime: sends its connection back to the loop when
/// finished, or closed if the task ends otherwise (a panic, or the runtime
/// dropping it), so the loop never waits for a connection that is gone.
pub(crate) struct JobTask {
    job: Option<OpenJob>,
    sink: DoneSink,
}

impl JobTask {
    pub(crate) fn new(job: OpenJob, sink: DoneSink) -> JobTask {
        JobTask {
            job: Some(job),
            sink,
        }
    }

    pub(crate) fn job(&mut self) -> &mut OpenJob {
        self.job.as_mut().expect("present until finished")
    }

    /// The request is over: the connection goes back to the loop.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        if let Some(job) = self.job.take() {
            self.sink.send(job.finish(outcome));
        }
    }
}

impl Drop for JobTask {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            log::error!("internal error while serving a request natively; connection closed");
            self.sink.send(job.finish(Outcome::Close));
        }
    }
}
