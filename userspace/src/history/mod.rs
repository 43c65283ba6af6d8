//! The history: what each address carried in each `--history-interval`,
//! kept on the host across restarts and reboots, and the billing reports
//! made from it or from Prometheus.
//!
//! `store` is the SQLite database, `codec` and `columns` its blobs,
//! `sampler` the reset-aware deltas, `recorder` the daemon's task,
//! `retention` the roll-up of old intervals, `period` the report's dates,
//! `percentile` the billing rules, `report` the aggregation and
//! `prometheus` the same report from a Prometheus query API.

pub mod codec;
mod columns;
pub mod percentile;
pub mod period;
pub mod prometheus;
pub mod recorder;
pub mod report;
pub mod retention;
pub mod sampler;
pub mod store;

use std::time::Duration;

pub use store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
#[error(
    "`{given}` is not a history interval: give whole seconds, minutes or hours (30s, 5m, 1h) that divide a day evenly, from 1s to 1h"
)]
pub struct IntervalError {
    given: String,
}

/// `--history-interval`: `30s`, `5m`, `1h`. It must divide a day, so
/// that days and billing months start on a slot boundary.
pub fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    let error = || IntervalError {
        given: text.to_owned(),
    };
    let (number, scale) = match text.as_bytes().last() {
        Some(b's') => (&text[..text.len() - 1], 1),
        Some(b'm') => (&text[..text.len() - 1], 60),
        Some(b'h') => (&text[..text.len() - 1], 3600),
        _ => return Err(error()),
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|s| (1..=3600).contains(s) && 86_400 % s == 0)
        .ok_or_else(error)?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_divide_a_day() {
        assert_eq!(parse_interval("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_interval("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["7m", "0s", "2h", "5", "5min", "-5m", "1.5m", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
