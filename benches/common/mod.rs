//! Shared by the benches (not a bench target itself).

pub mod heads;
