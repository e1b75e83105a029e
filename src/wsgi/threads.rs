//! The serving threads' side of the WSGI ring: each thread's handler
//! (its environ cache and spare objects, a Python session per run of
//! requests) and the factory the I/O ring's pool starts them with, and the
//! signal mask every thread the engine starts applies. Apart from
//! `server.rs` (the Python entry points) and `setup/` (building the
//! server), which both use it.

use std::sync::Arc;

use pyo3::prelude::*;

use super::app::{WsgiServe, WsgiShared};
use super::environ::EnvironCache;
use super::reuse::Spare;
use qiao_io::{Handler, HandlerFactory, Serve};

/// The WSGI side of one serving thread.
pub(crate) struct WsgiHandler {
    shared: Arc<WsgiShared>,
    cache: EnvironCache,
    spare: Spare,
}

impl Handler for WsgiHandler {
    fn session<R>(&mut self, f: impl FnOnce(&mut dyn Serve) -> R) -> R {
        Python::attach(|py| {
            let mut serve = WsgiServe {
                py,
                shared: &self.shared,
                cache: &mut self.cache,
                spare: &mut self.spare,
            };
            f(&mut serve)
        })
    }
}

/// Makes the serving threads' handlers.
pub(crate) struct WsgiThreads {
    pub(super) shared: Arc<WsgiShared>,
}

impl HandlerFactory for WsgiThreads {
    type Handler = WsgiHandler;

    fn run_thread<R: Send>(&self, body: impl FnOnce(&mut WsgiHandler) -> R + Send) -> R {
        block_signals();
        let mut handler = WsgiHandler {
            shared: self.shared.clone(),
            cache: EnvironCache::default(),
            spare: Spare::default(),
        };
        // The thread keeps one Python thread state for its whole life
        // (attached once, then detached while not serving), so taking the
        // GIL per session is a plain restore, not a new thread state.
        Python::attach(|py| py.detach(|| body(&mut handler)))
    }
}

/// Serving threads leave signals to the main thread, whose loop wakes on
/// them (EINTR) and runs the Python handlers.
pub(crate) fn block_signals() {
    // SAFETY: building and applying a signal mask for this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGCHLD,
            libc::SIGWINCH,
            libc::SIGABRT,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
