//! Shared helpers for the `crates/http/tests/http_*.rs` suites: a deterministic PRNG,
//! owned snapshots of parsed heads, the three feeding modes (whole, byte by
//! byte, random splits) for `parse_head` and `BodyDecoder`, and a
//! simulated connection that serves pipelined requests through the loop's
//! own state machine (`http::conn`) from any sequence of reads. The feeding
//! modes are here; the heads (`head`), the head tables (`head_table`), the
//! bodies (`body`) and the connection (`conn`) are submodules, re-exported.
//! (`json_table.rs` beside them is no part of it: the suites that read a
//! JSON case table under `tests/cases/` include it on its own, by path.)

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]
#![allow(dead_code)]

mod body;
mod conn;
mod head;
mod head_table;

// As with `dead_code`: a re-export one binary leaves unused is another's.
#[allow(unused_imports)]
pub use self::{
    body::{body_all_ways, decode_reads, BodyOutcome},
    conn::{serve, serve_all_ways, ConnEnd, Req},
    head::{head_all_ways, Parsed},
    head_table::{check, err, run, Case, Want, C},
};

/// Seeds used for the "random splits" feeding mode.
pub const SEEDS: [u64; 5] = [1, 7, 42, 1234, 0xDEAD_BEEF];

#[path = "cuts.rs"]
mod cuts;
pub use cuts::random_cuts;

/// Runs `f` on `input` whole, byte by byte and cut at random points (one
/// read per piece); every mode must give the same answer, which is returned.
pub fn all_ways<T: PartialEq + std::fmt::Debug>(input: &[u8], f: impl Fn(&[&[u8]]) -> T) -> T {
    let whole = f(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(f(&bytes), whole, "byte by byte vs whole, {}", show(input));
    for seed in SEEDS {
        let cuts = random_cuts(input.len(), seed);
        let got = f(&pieces(input, &cuts));
        assert_eq!(
            got,
            whole,
            "reads cut at {cuts:?} vs whole, {}",
            show(input)
        );
    }
    whole
}

/// Splits `input` into reads at `cuts`.
pub fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        out.push(&input[start..c]);
        start = c;
    }
    out
}

/// A short printable preview of raw bytes for failure messages.
pub fn show(raw: &[u8]) -> String {
    let start = String::from_utf8_lossy(&raw[..raw.len().min(120)]);
    format!("{start:?} ({} bytes)", raw.len())
}
