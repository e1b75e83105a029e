//! The `Date` header value (RFC 9110 §6.6.1), formatted at most once a
//! second: formatting a date per response would cost more than parsing the
//! request head.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// One thread's cached IMF-fixdate.
pub struct DateCache {
    second: u64,
    text: [u8; DATE_LEN],
}

impl Default for DateCache {
    fn default() -> Self {
        let mut cache = DateCache {
            second: u64::MAX,
            text: [b' '; DATE_LEN],
        };
        cache.get();
        cache
    }
}

impl DateCache {
    /// The current date, reformatted only when the second changed.
    pub fn get(&mut self) -> &[u8] {
        let second = coarse_seconds();
        if second != self.second {
            self.second = second;
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            let bytes = text.as_bytes();
            let n = bytes.len().min(DATE_LEN);
            self.text[..n].copy_from_slice(&bytes[..n]);
        }
        &self.text
    }
}

/// Seconds since the epoch from the kernel's coarse clock: read per
/// response, and a plain memory read (no TSC) where the precise clock
/// costs more in a VM; its few milliseconds of lag do not matter to a
/// value of one-second resolution.
fn coarse_seconds() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes into a timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
            return ts.tv_sec as u64;
        }
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
