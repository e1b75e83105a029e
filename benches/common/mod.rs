//! Shared by the benches (not a bench target itself).

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]

pub mod heads;
