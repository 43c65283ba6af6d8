//! Report periods: `--month YYYY-MM` from the `--billing-day`, or
//! `--from`/`--to`, all in UTC, as Unix milliseconds.

use std::fmt::Write as _;

#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    #[error("`{given}` is not a month: write it as YYYY-MM, e.g. 2026-11 (months 01 to 12)")]
    Month { given: String },
    #[error(
        "`{given}` is not a time: write YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], in UTC (a trailing Z is allowed)"
    )]
    Time { given: String },
    #[error("the period is empty: --to ({to}) must come after --from ({from})")]
    Empty { from: String, to: String },
}

const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as u32
}

/// The billing month `month` (YYYY-MM) that starts on its `billing_day`
/// (1 to 28) at 00:00 UTC and runs to that day of the next month.
pub fn month(month: &str, billing_day: u32) -> Result<(i64, i64), PeriodError> {
    let error = || PeriodError::Month {
        given: month.to_owned(),
    };
    let (y, m) = month.split_once('-').ok_or_else(error)?;
    let (y, m): (i64, u32) = match (number(y, 4), number(m, 2)) {
        (Some(y), Some(m)) if (1..=12).contains(&m) && y >= 1970 => (i64::from(y), m),
        _ => return Err(error()),
    };
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let from = days_from_civil(y, m, billing_day) * DAY_MS;
    let to = days_from_civil(ny, nm, billing_day) * DAY_MS;
    Ok((from, to))
}

/// Exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<u32> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS][Z]`, UTC.
pub fn time(text: &str) -> Result<i64, PeriodError> {
    let error = || PeriodError::Time {
        given: text.to_owned(),
    };
    let t = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = t.split_once(['T', ' ']).unwrap_or((t, "00:00"));
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(error());
    };
    let (y, m, d) = match (number(y, 4), number(m, 2), number(d, 2)) {
        (Some(y), Some(m), Some(d)) if (1..=12).contains(&m) && y >= 1970 => (i64::from(y), m, d),
        _ => return Err(error()),
    };
    if d == 0 || d > days_in_month(y, m) {
        return Err(error());
    }
    let hms: Vec<&str> = clock.split(':').collect();
    let field = |i: usize, max: u32| {
        hms.get(i)
            .map_or(Some(0), |f| number(f, 2).filter(|&v| v <= max))
    };
    let (Some(hh), Some(mm), Some(ss)) = (field(0, 23), field(1, 59), field(2, 59)) else {
        return Err(error());
    };
    if hms.len() < 2 || hms.len() > 3 {
        return Err(error());
    }
    let seconds = i64::from(hh * 3600 + mm * 60 + ss);
    Ok(days_from_civil(y, m, d) * DAY_MS + seconds * 1000)
}

/// `--from`/`--to` as a period.
pub fn range(from: &str, to: &str) -> Result<(i64, i64), PeriodError> {
    let (f, t) = (time(from)?, time(to)?);
    if t <= f {
        return Err(PeriodError::Empty {
            from: from.into(),
            to: to.into(),
        });
    }
    Ok((f, t))
}

/// `2026-11-05T12:00:00Z`.
pub fn format_ms(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let s = ms.rem_euclid(DAY_MS) / 1000;
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    let frac = ms.rem_euclid(1000);
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_run_from_the_billing_day() {
        let (f, t) = month("2026-11", 1).unwrap();
        assert_eq!(
            (format_ms(f), format_ms(t)),
            ("2026-11-01T00:00:00Z".into(), "2026-12-01T00:00:00Z".into())
        );
        let (f, t) = month("2026-12", 15).unwrap();
        assert_eq!(
            (format_ms(f), format_ms(t)),
            ("2026-12-15T00:00:00Z".into(), "2027-01-15T00:00:00Z".into())
        );
        assert_eq!(
            month("2024-02", 1).unwrap().1 - month("2024-02", 1).unwrap().0,
            29 * DAY_MS
        );
        for bad in [
            "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "november", "1969-12",
        ] {
            assert!(month(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_utc_dates_and_clock_times() {
        assert_eq!(time("1970-01-02").unwrap(), DAY_MS);
        assert_eq!(
            time("2026-11-05T12:30").unwrap(),
            time("2026-11-05").unwrap() + 45_000_000
        );
        assert_eq!(
            format_ms(time("2026-11-05T12:30:07Z").unwrap()),
            "2026-11-05T12:30:07Z"
        );
        assert_eq!(format_ms(1_500), "1970-01-01T00:00:01.500Z");
        for bad in [
            "2026-02-30",
            "2026-11-05T24:00",
            "2026-11-05T12",
            "2026-11-5",
            "yesterday",
            "2026-11-05T12:00:00:00",
        ] {
            assert!(time(bad).is_err(), "{bad}");
        }
        assert!(range("2026-11-02", "2026-11-01").is_err());
    }
}
