//! `aliasstat report`: totals and the Nth percentile per alias, owner or
//! address over a period, from intervals of whichever source.
//!
//! Both sources feed the same [`Builder`] with intervals `[start, end)` on
//! a grid of `step`: the local store its samples, Prometheus one interval
//! per query step. An interval inside one grid slot adds to that slot's
//! traffic; the slot takes part in the percentile only when intervals
//! cover all of it (a restart mid-slot splits a slot in two samples, which
//! together still cover it). An interval that spans several slots (the
//! daemon was down, the kernel still counting) adds to the totals only.

use std::collections::{BTreeMap, HashMap};

use common::Counters;
use serde::Serialize;

use super::{
    codec::Traffic,
    percentile::{Percentile, Rule},
    store::{SeriesKey, Store, StoreError},
};

/// What rows a report has (`--by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    Alias,
    Owner,
    Address,
}

impl By {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alias => "alias",
            Self::Owner => "owner",
            Self::Address => "address",
        }
    }

    /// The row a series belongs to.
    pub fn of(self, key: &SeriesKey) -> &str {
        match self {
            Self::Alias => &key.alias,
            Self::Owner => &key.owner,
            Self::Address => &key.address,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Query {
    pub from_ms: i64,
    pub to_ms: i64,
    pub by: By,
    pub percentile: Percentile,
    pub rule: Rule,
}

/// One row of a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The alias, owner or address; empty for undocumented addresses when
    /// grouping by alias or owner.
    pub name: String,
    /// With `--by alias`: the alias's owner in its latest interval.
    pub owner: String,
    pub rx: Counters,
    pub tx: Counters,
    /// Bits per second; `None` without any interval that has a sample.
    pub percentile_bps: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub query: Query,
    /// The grid of the latest interval; `None` when there was none.
    pub step_ms: Option<i64>,
    /// Slots fully covered by samples: the N of the percentile.
    pub sampled: usize,
    /// Slots of `step_ms` in the period.
    pub total: usize,
    pub rows: Vec<Row>,
}

#[derive(Default)]
struct Group {
    owner: String,
    rx: Counters,
    tx: Counters,
    /// Bytes in and out per (slot start, step).
    slots: HashMap<(i64, i64), (u64, u64)>,
}

/// Accumulates intervals into rows.
pub struct Builder {
    query: Query,
    groups: BTreeMap<String, Group>,
    /// Milliseconds of each slot that intervals inside it cover.
    covered: HashMap<(i64, i64), i64>,
    step_ms: Option<i64>,
}

impl Builder {
    pub fn new(query: Query) -> Self {
        Self {
            query,
            groups: BTreeMap::new(),
            covered: HashMap::new(),
            step_ms: None,
        }
    }

    /// One interval `[start_ms, end_ms)` on a grid of `step_ms`, with the
    /// traffic of each row (name, owner) in it.
    pub fn interval<'a>(
        &mut self,
        (start_ms, end_ms, step_ms): (i64, i64, i64),
        traffic: impl IntoIterator<Item = (&'a str, &'a str, Traffic)>,
    ) {
        self.step_ms = Some(step_ms);
        let slot = start_ms.div_euclid(step_ms) * step_ms;
        let inside = end_ms <= slot + step_ms;
        if inside {
            *self.covered.entry((slot, step_ms)).or_default() += end_ms - start_ms;
        }
        for (name, owner, t) in traffic {
            let group = self.groups.entry(name.to_owned()).or_default();
            if group.owner != owner {
                owner.clone_into(&mut group.owner);
            }
            group.rx += t.rx;
            group.tx += t.tx;
            if inside {
                let bytes = group.slots.entry((slot, step_ms)).or_default();
                bytes.0 += t.rx.bytes;
                bytes.1 += t.tx.bytes;
            }
        }
    }

    pub fn finish(self) -> Report {
        let mut sampled: Vec<(i64, i64)> = self
            .covered
            .iter()
            .filter(|&(&(_, step), &ms)| ms >= step)
            .map(|(&slot, _)| slot)
            .collect();
        sampled.sort_unstable();
        let q = self.query;
        let rows = self
            .groups
            .into_iter()
            .map(|(name, g)| {
                let rates: Vec<(f64, f64)> = sampled
                    .iter()
                    .map(|slot| {
                        let (rx, tx) = g.slots.get(slot).copied().unwrap_or_default();
                        let per_second = 8000.0 / slot.1 as f64;
                        (rx as f64 * per_second, tx as f64 * per_second)
                    })
                    .collect();
                Row {
                    name,
                    owner: g.owner,
                    rx: g.rx,
                    tx: g.tx,
                    percentile_bps: q.rule.apply(q.percentile, &rates),
                }
            })
            .collect();
        let total = self
            .step_ms
            .map_or(0, |s| ((q.to_ms - q.from_ms) / s) as usize);
        Report {
            query: q,
            step_ms: self.step_ms,
            sampled: sampled.len(),
            total,
            rows,
        }
    }
}

/// The report from the local store.
pub fn local(store: &Store, query: Query) -> Result<Report, StoreError> {
    let series = store.series()?;
    let mut builder = Builder::new(query);
    store.intervals(query.from_ms, query.to_ms, |i| {
        let traffic = i.counts.iter().filter_map(|(id, t)| {
            let key = series.get(id)?;
            Some((query.by.of(key), key.owner.as_str(), *t))
        });
        builder.interval((i.start_ms, i.end_ms, i.step_ms), traffic);
    })?;
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(rx_bytes: u64, tx_bytes: u64) -> Traffic {
        Traffic {
            rx: Counters::new(1, rx_bytes),
            tx: Counters::new(1, tx_bytes),
        }
    }

    fn query(rule: Rule) -> Query {
        Query {
            from_ms: 0,
            to_ms: 10_000,
            by: By::Owner,
            percentile: Percentile::P95,
            rule,
        }
    }

    #[test]
    fn split_slots_count_and_spanning_intervals_only_add_to_totals() {
        let mut b = Builder::new(query(Rule::Max));
        // Slot 0 in two samples (a restart at 400 ms), slot 1 in one.
        b.interval((0, 400, 1000), [("web", "web", t(100, 0))]);
        b.interval((400, 1000, 1000), [("web", "web", t(25, 0))]);
        b.interval((1000, 2000, 1000), [("web", "web", t(50, 10))]);
        // Down from 2000 to 5000, the kernel counting: totals only.
        b.interval((2000, 5000, 1000), [("web", "web", t(900, 0))]);
        // Slot 5 only half covered (the daemon started at 5500).
        b.interval((5500, 6000, 1000), [("web", "web", t(7, 0))]);
        let r = b.finish();
        assert_eq!((r.sampled, r.total), (2, 10));
        let web = &r.rows[0];
        assert_eq!(web.rx, Counters::new(5, 1082));
        assert_eq!(web.tx.bytes, 10);
        // Slot rates: 125 B and 50 B per second, in bits; the largest.
        assert_eq!(web.percentile_bps, Some(1000.0));
    }

    #[test]
    fn rows_without_traffic_in_a_slot_rate_zero_there() {
        let mut b = Builder::new(Query {
            percentile: "50".parse().unwrap(),
            ..query(Rule::Sum)
        });
        b.interval((0, 1000, 1000), [("a", "", t(10, 0)), ("b", "", t(1, 1))]);
        b.interval((1000, 2000, 1000), [("a", "", t(10, 0))]);
        b.interval((2000, 3000, 1000), []);
        let r = b.finish();
        assert_eq!(r.sampled, 3);
        // a: 80 80 0 → median 80; b: 16 0 0 → median 0.
        assert_eq!(r.rows[0].percentile_bps, Some(80.0));
        assert_eq!(r.rows[1].percentile_bps, Some(0.0));
    }
}
