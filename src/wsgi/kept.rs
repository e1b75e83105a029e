//! A body piece the application gave as a Python `bytes` object, kept by
//! reference in the connection's backlog (`io::backlog`) until a slow
//! client has taken it, instead of being copied: a 100 MB response to a
//! client that is not reading costs the worker no second 100 MB, and the
//! serving thread moves on at once.
//!
//! `bytes` objects are immutable and their buffer does not move while
//! they live, so the event loop may read it without the GIL. The object is
//! released wherever the backlog ends, usually without the GIL: pyo3 then
//! queues the decrement for the next thread that takes the GIL.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use qiao_io::backlog::Held;

/// `len` bytes at `ptr`, inside the buffer of the `bytes` object kept.
pub(crate) struct KeptBytes {
    _owner: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into an immutable buffer owned by `_owner`,
// which keeps it alive and unchanged; reading it needs no GIL, and
// dropping the owner without the GIL is deferred by pyo3.
unsafe impl Send for KeptBytes {}
// SAFETY: as above; nothing is ever written through the pointer.
unsafe impl Sync for KeptBytes {}

impl KeptBytes {
    /// Keeps `piece`, which must lie within `owner`'s buffer.
    pub(crate) fn boxed(owner: &Bound<'_, PyBytes>, piece: &[u8]) -> Box<dyn Held> {
        let whole = owner.as_bytes().as_ptr_range();
        let range = piece.as_ptr_range();
        assert!(
            whole.start <= range.start && range.end <= whole.end,
            "a kept piece lies within its bytes object"
        );
        Box::new(KeptBytes {
            _owner: owner.clone().unbind(),
            ptr: piece.as_ptr(),
            len: piece.len(),
        })
    }
}

impl Held for KeptBytes {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` lies in the buffer `_owner` keeps alive
        // and immutable (checked in `new`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}
