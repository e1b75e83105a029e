//! The I/O ring: listening sockets, the event loop (mio: epoll), each
//! connection's state machine and timers, and the blocking-with-timeout
//! socket operations the WSGI ring uses while the app runs. No Python here:
//! the WSGI ring plugs in through [`Handler`] and [`Serve`].
//!
//! Threading: the thread that runs an event loop also calls the app for
//! that loop's connections (no hand-off per request); `--threads N` runs N
//! such loops sharing the listening sockets.

pub mod body;
pub mod conn;
pub mod event_loop;
pub mod heartbeat;
pub mod listener;
pub mod output;
pub mod service;
pub mod sock;

pub use body::{BodyError, BodyReader};
pub use event_loop::EventLoop;
pub use listener::{Listener, ListenerInfo, PeerInfo};
pub use output::Output;
pub use service::{Exchange, Handler, LoopConfig, Outcome, Serve, Shared};
