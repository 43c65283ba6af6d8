//! The two clocks of the peer table: the kernel's (CLOCK_MONOTONIC, which
//! `bpf_ktime_get_coarse_ns` reads) and wall time, and the RFC 3339 text
//! the API and `aliasstat peers` show.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One reading of both clocks, to turn kernel times into wall times.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub wall: SystemTime,
    /// CLOCK_MONOTONIC now, in nanoseconds.
    pub monotonic_ns: u64,
}

impl Clock {
    pub fn now() -> Self {
        // SAFETY: timespec is plain old data, for which zeroes are valid.
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        // SAFETY: a valid clock id and a timespec to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
        let monotonic_ns = (ts.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec as u64);
        Self {
            wall: SystemTime::now(),
            monotonic_ns,
        }
    }

    /// The wall time of a kernel time `ns` (never after now).
    pub fn wall_of(&self, ns: u64) -> SystemTime {
        self.wall - Duration::from_nanos(self.monotonic_ns.saturating_sub(ns))
    }
}

/// Unix milliseconds, as the record file keeps times.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `2026-12-01T10:00:00Z`: UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The inverse of [`rfc3339`], for its own output only.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        // (unix seconds, text)
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_119_200, "2026-12-01T10:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
        ];
        for (secs, text) in cases {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(rfc3339(t), text);
            assert_eq!(parse_rfc3339(text), Some(t), "{text}");
        }
        for bad in ["2026-12-01 10:00:00Z", "2026-12-01T10:00:00", "x"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn kernel_times_become_wall_times() {
        let clock = Clock {
            wall: UNIX_EPOCH + Duration::from_secs(1000),
            monotonic_ns: 50_000_000_000,
        };
        assert_eq!(
            clock.wall_of(48_000_000_000),
            UNIX_EPOCH + Duration::from_secs(998)
        );
        // A coarse read may be a tick ahead of the fine one: never later
        // than now.
        assert_eq!(clock.wall_of(50_000_000_001), clock.wall);
    }
}
