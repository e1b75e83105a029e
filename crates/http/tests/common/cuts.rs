//! Random cut points for the "random splits" feeding mode, shared by the
//! HTTP ring's and the I/O ring's test helpers.

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]

/// Sorted cut points in `1..len` drawn from `seed` (splitmix64, so no `rand`
/// dependency): the input is read as `input[c_i..c_{i+1}]`.
pub fn random_cuts(len: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut below = |n: usize| {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    };
    if len < 2 {
        return Vec::new();
    }
    let count = 1 + below(len.min(12));
    let mut cuts: Vec<usize> = (0..count).map(|_| 1 + below(len - 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}
