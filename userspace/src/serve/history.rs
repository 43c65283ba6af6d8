//! `/api/v1/history`: one address's rx and tx bit/s over the last hour or
//! day, from the history store, for the live page's long-range chart.
//!
//! It reads through the store's own queries (series, then the intervals
//! of the window), never its blobs. Consecutive intervals are summed into
//! points of a whole number of `--history-interval`s, so that an answer
//! has at most [`MAX_POINTS`] points whatever the interval: a 2 s history
//! charts a day in 4 min points, a 5 min history in its own intervals.

use std::{
    collections::HashSet,
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::api;
use crate::history::{
    recorder,
    store::{Interval, Store, StoreError},
};

/// Points per answer at most: 360 numbers a series.
pub const MAX_POINTS: i64 = 360;

/// How far back the chart reaches (`range=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
}

impl Range {
    const fn ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryQueryError {
    #[error("give address=ADDRESS, the address to chart")]
    NoAddress,
    #[error("address={value}: not an IPv4 or IPv6 address")]
    Address { value: String },
    #[error("range={value}: give 1h or 1d")]
    Range { value: String },
    #[error("unknown parameter `{name}`; /api/v1/history takes address and range")]
    Unknown { name: String },
}

/// The parameters of `/api/v1/history`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub address: IpAddr,
    /// `1h` unless `range=1d`.
    pub range: Range,
}

impl Query {
    /// The query string of a request (`None`: no `?` at all).
    pub fn parse(raw: Option<&str>) -> Result<Self, HistoryQueryError> {
        let mut range = Range::Hour;
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (name, value) {
                ("address", _) => {}
                ("range", "1h") => range = Range::Hour,
                ("range", "1d") => range = Range::Day,
                ("range", value) => {
                    return Err(HistoryQueryError::Range {
                        value: value.into(),
                    });
                }
                (name, _) => return Err(HistoryQueryError::Unknown { name: name.into() }),
            }
        }
        let value = api::wanted_address(raw).ok_or(HistoryQueryError::NoAddress)?;
        let address = value
            .parse()
            .map_err(|_| HistoryQueryError::Address { value })?;
        Ok(Self { address, range })
    }
}

/// The answer: `points` values a series, oldest first, each the rate over
/// the intervals that ended in its `step_seconds`; null where the store has
/// no interval (the daemon was not running, or not yet).
#[derive(Debug, PartialEq, Serialize)]
pub struct Chart {
    pub address: IpAddr,
    pub range: &'static str,
    /// Unix seconds at which the first point begins.
    pub from: i64,
    pub step_seconds: i64,
    pub points: usize,
    pub rx_bits: Vec<Option<f64>>,
    pub tx_bits: Vec<Option<f64>>,
    /// The bytes behind each rate: exact, as the store holds them.
    pub rx_bytes: Vec<Option<u64>>,
    pub tx_bytes: Vec<Option<u64>>,
}

/// The window and point size of a query asked at `now_ms`, on a history
/// of `interval_ms`: points are whole intervals, and the window ends at
/// the point boundary after now.
fn window(range: Range, interval_ms: i64, now_ms: i64) -> (i64, i64, i64) {
    let interval_ms = interval_ms.max(1);
    // Both positive: a rounded-up division.
    let up = |a: i64, b: i64| (a + b - 1) / b;
    let per_point = up(range.ms() / MAX_POINTS, interval_ms).max(1);
    let step_ms = per_point * interval_ms;
    let n = up(range.ms(), step_ms);
    let to_ms = now_ms.div_euclid(step_ms) * step_ms + step_ms;
    (to_ms - n * step_ms, step_ms, n)
}

/// Sums the intervals that end in `(from_ms, from_ms + n × step_ms]` into
/// points, counting only the series in `ids`.
struct Points {
    from_ms: i64,
    step_ms: i64,
    /// rx bytes, tx bytes, milliseconds covered.
    sums: Vec<Option<(u64, u64, i64)>>,
}

impl Points {
    fn add(&mut self, ids: &HashSet<u64>, i: &Interval) {
        let index = (i.end_ms - 1 - self.from_ms).div_euclid(self.step_ms);
        let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|k| self.sums.get_mut(k))
        else {
            return;
        };
        let sum = slot.get_or_insert((0, 0, 0));
        for (_, t) in i.counts.iter().filter(|(id, _)| ids.contains(id)) {
            sum.0 += t.rx.bytes;
            sum.1 += t.tx.bytes;
        }
        sum.2 += i.end_ms - i.start_ms;
    }

    fn chart(self, q: Query) -> Chart {
        let rate = |bytes: u64, ms: i64| bytes as f64 * 8000.0 / ms.max(1) as f64;
        let each = |f: &dyn Fn(&(u64, u64, i64)) -> f64| -> Vec<Option<f64>> {
            self.sums.iter().map(|s| s.as_ref().map(f)).collect()
        };
        Chart {
            address: q.address,
            range: q.range.as_str(),
            from: self.from_ms.div_euclid(1000),
            step_seconds: self.step_ms / 1000,
            points: self.sums.len(),
            rx_bits: each(&|s| rate(s.0, s.2)),
            tx_bits: each(&|s| rate(s.1, s.2)),
            rx_bytes: self.sums.iter().map(|s| s.map(|s| s.0)).collect(),
            tx_bytes: self.sums.iter().map(|s| s.map(|s| s.1)).collect(),
        }
    }
}

/// The chart of `q` at `now` from the history the daemon records with
/// `history`; all null while the daemon has not written its database yet.
pub fn read(history: &recorder::Options, q: Query, now: SystemTime) -> Result<Chart, StoreError> {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64;
    let (from_ms, step_ms, n) = window(q.range, history.step.as_millis() as i64, now_ms);
    let mut points = Points {
        from_ms,
        step_ms,
        sums: vec![None; n as usize],
    };
    let store = match Store::open_read(&history.state_dir) {
        Ok(store) => store,
        Err(StoreError::Missing { .. }) => return Ok(points.chart(q)),
        Err(e) => return Err(e),
    };
    let ids: HashSet<u64> = store
        .series()?
        .into_iter()
        .filter(|(_, key)| key.address.parse() == Ok(q.address))
        .map(|(id, _)| id)
        .collect();
    store.intervals(from_ms, from_ms + n * step_ms, |i| points.add(&ids, &i))?;
    Ok(points.chart(q))
}

#[cfg(test)]
mod tests {
    use common::Counters;

    use super::*;
    use crate::history::codec::Traffic;

    #[test]
    fn parses_address_and_range_and_refuses_the_rest() {
        let q = Query::parse(Some("address=2001%3Adb8%3A%3A1&range=1d")).unwrap();
        assert_eq!(q.address, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(q.range, Range::Day);
        assert_eq!(
            Query::parse(Some("address=10.0.0.5")).unwrap().range,
            Range::Hour
        );
        let errors = [
            ("", "give address=ADDRESS, the address to chart"),
            ("address=web", "address=web: not an IPv4 or IPv6 address"),
            ("address=10.0.0.5&range=1w", "range=1w: give 1h or 1d"),
            (
                "address=10.0.0.5&since=0",
                "unknown parameter `since`; /api/v1/history takes address and range",
            ),
        ];
        for (raw, message) in errors {
            assert_eq!(
                Query::parse(Some(raw)).unwrap_err().to_string(),
                message,
                "{raw}"
            );
        }
    }

    #[test]
    fn points_are_whole_intervals_and_at_most_the_bound() {
        // (range, interval) → (step, points)
        let cases = [
            (Range::Hour, 2_000, 10_000, 360),
            (Range::Day, 2_000, 240_000, 360),
            (Range::Hour, 300_000, 300_000, 12),
            (Range::Day, 300_000, 300_000, 288),
            (Range::Day, 7_000, 245_000, 353),
            (Range::Hour, 3_600_000, 3_600_000, 1),
        ];
        for (range, interval, step, n) in cases {
            let (from, got_step, got_n) = window(range, interval, 1_000_000_123);
            assert_eq!((got_step, got_n), (step, n), "{range:?} {interval}");
            assert_eq!(from % step, 0);
            assert!(from + n * step > 1_000_000_123);
        }
    }

    #[test]
    fn sums_the_address_per_point_and_leaves_gaps_null() {
        let q = Query::parse(Some("address=10.0.0.5")).unwrap();
        let traffic = |rx: u64, tx: u64| Traffic {
            rx: Counters::new(1, rx),
            tx: Counters::new(1, tx),
        };
        let interval = |start_ms: i64, counts| Interval {
            start_ms,
            end_ms: start_ms + 2_000,
            step_ms: 2_000,
            counts,
        };
        let mut points = Points {
            from_ms: 0,
            step_ms: 10_000,
            sums: vec![None; 3],
        };
        let ids = HashSet::from([1, 3]);
        // Point 0: two intervals, series 2 is another address. Point 1:
        // an interval without the address. Point 2: none at all.
        points.add(
            &ids,
            &interval(0, vec![(1, traffic(1000, 10)), (2, traffic(7, 7))]),
        );
        points.add(&ids, &interval(2_000, vec![(3, traffic(500, 0))]));
        points.add(&ids, &interval(12_000, vec![(2, traffic(9, 9))]));
        let chart = points.chart(q);
        assert_eq!(chart.rx_bytes, [Some(1500), Some(0), None]);
        assert_eq!(chart.tx_bytes, [Some(10), Some(0), None]);
        // 1500 B over the 4 s the two intervals cover.
        assert_eq!(chart.rx_bits, [Some(3000.0), Some(0.0), None]);
        assert_eq!((chart.points, chart.step_seconds, chart.from), (3, 10, 0));
    }
}
