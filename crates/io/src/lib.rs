//! The I/O ring: listening sockets, the event loop (mio: epoll), each
//! connection's state machine and timers, and the blocking-with-timeout
//! socket operations the WSGI ring uses while the app runs. No Python here:
//! the WSGI ring plugs in through [`Handler`] and [`Serve`].
//!
//! Threading: one event loop per worker, served by a pool of threads
//! (`pool`): the thread that leads the loop also calls the app for the
//! request it took (no hand-off per request); when the app blocks, another
//! thread takes the loop over. Requests under a native route (`--static`,
//! `--proxy`: `qiao_native`) are served on the same threads without the
//! GIL, or handed to the proxy's tasks, which run while a thread leads.

pub mod alloc;
pub mod answer;
pub mod backlog;
pub mod body;
mod conn;
pub mod event_loop;
pub mod handoff;
pub mod heartbeat;
pub mod inbox;
pub mod listener;
pub mod metrics;
pub mod native_service;
pub mod notice;
pub mod output;
pub mod pool;
pub mod record;
pub mod service;
mod shared;
pub mod sock;
pub mod wire;

pub use body::{BodyError, BodyReader};
pub use event_loop::EventLoop;
pub use event_loop::LoopConfig;
pub use listener::{Listener, ListenerInfo, PeerInfo};
pub use output::Output;
pub use pool::HandlerFactory;
pub use service::{Exchange, Handler, Outcome, Serve};
pub use shared::Shared;
