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

/// Earliest date an HTTP-date can write: 0000-01-01T00:00:00Z (its year
/// has four digits, RFC 9110 §5.6.7), in seconds since the epoch.
pub(crate) const MIN_HTTP_DATE: i64 = -62_167_219_200;
/// Latest: 9999-12-31T23:59:59Z.
pub(crate) const MAX_HTTP_DATE: i64 = 253_402_300_799;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`: exact for every year, before 1970 too).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (the inverse of the above).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The IMF-fixdate of `secs` since the epoch (`Sun, 06 Nov 1994 08:49:37
/// GMT`), dates before 1970 included; clamped to the years an HTTP-date
/// can write (0000 to 9999).
pub(crate) fn fmt_http_date(secs: i64) -> String {
    let secs = secs.clamp(MIN_HTTP_DATE, MAX_HTTP_DATE);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        MONTHS[month as usize - 1],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Seconds since the epoch of an HTTP-date in any of its three forms
/// (RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime), dates before 1970
/// included; None if `text` is none of them or names no real date. The
/// weekday is not checked against the date, and month names are matched
/// without case (as Python's `email.utils` does, which this was first
/// written to agree with); an RFC 850 two-digit year is 1969-1999 from 69,
/// else 20xx (RFC 9110's "50 years ahead" rule needs a clock). The
/// portable middleware's `_http.parse_http_date` is the same parser, step
/// by step.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    let (day, month, year, time) = match tokens[..] {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [wd, day, month, year, time, "GMT"] if wd.ends_with(',') && year.len() == 4 => {
            (day, month, year_of(year)?, time)
        }
        // Sunday, 06-Nov-94 08:49:37 GMT
        [wd, date, time, "GMT"] if wd.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || yy.len() != 2 {
                return None;
            }
            let yy = year_of(yy)?;
            (
                day,
                month,
                if yy > 68 { 1900 + yy } else { 2000 + yy },
                time,
            )
        }
        // Sun Nov  6 08:49:37 1994
        [_, month, day, time, year] if year.len() == 4 => (day, month, year_of(year)?, time),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let day: u32 = digits(day, 2)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut hms = time.split(':').map(|t| digits(t, 2));
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = i64::from(h * 3600 + m * 60 + s);
    Some(days_from_civil(year, month, day) * 86_400 + secs)
}

/// A year's digits (already checked for their count by the caller).
fn year_of(text: &str) -> Option<i64> {
    digits(text, 4).map(i64::from)
}

/// 1 to `max` ASCII digits as a number.
fn digits(text: &str, max: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_every_year() {
        assert_eq!(fmt_http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(
            fmt_http_date(-86_400 * 365),
            "Wed, 01 Jan 1969 00:00:00 GMT"
        );
        assert_eq!(fmt_http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(fmt_http_date(i64::MIN), "Sat, 01 Jan 0000 00:00:00 GMT");
        assert_eq!(fmt_http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        // Matches the httpdate crate wherever that can write the date.
        for secs in [1, 59, 86_399, 1_700_000_000, 4_102_444_800] {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(fmt_http_date(secs as i64), httpdate::fmt_http_date(t));
        }
    }

    #[test]
    fn parses_the_three_forms() {
        let at = Some(784_111_777);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), at);
        assert_eq!(parse_http_date("sun, 06 nov 1994 08:49:37 GMT"), at);
        let before = Some(-86_400 * 365);
        assert_eq!(parse_http_date("Wed, 01 Jan 1969 00:00:00 GMT"), before);
        assert_eq!(parse_http_date("Wednesday, 01-Jan-69 00:00:00 GMT"), before);
        assert_eq!(
            parse_http_date("Thu, 01-Jan-68 00:00:00 GMT"),
            Some(3_092_601_600)
        );
        for secs in [-62_167_219_200, -1, 0, 1, 1_700_000_000, MAX_HTTP_DATE] {
            assert_eq!(parse_http_date(&fmt_http_date(secs)), Some(secs), "{secs}");
        }
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
