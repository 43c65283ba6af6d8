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

use std::{collections::HashMap, sync::mpsc, thread};

use common::Counters;
use serde::Serialize;

use super::{
    codec::Traffic,
    percentile::{Percentile, Rule},
    store::{Interval, SeriesKey, Store, StoreError},
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

struct Group {
    name: String,
    /// The owner of its latest traffic, by index in `Builder::owners`.
    owner: usize,
    rx: Counters,
    tx: Counters,
}

/// A slot (start, step) that an interval lay inside.
struct Slot {
    at: (i64, i64),
    /// The milliseconds of it that such intervals cover.
    covered_ms: i64,
}

/// Slots per [`Builder::tiles`] entry.
const TILE: usize = 64;

/// What traffic adds to: a row (a group) and the owner it had then.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    group: usize,
    owner: usize,
}

/// Accumulates intervals into rows.
///
/// Rows and slots are numbered as they first appear, so the work per
/// entry is two vector indexings: a month of 5-minute intervals over 1k
/// aliases is millions of entries, and grouping them through maps keyed
/// by name and slot took seconds.
///
/// The bytes per row and slot are kept in tiles of [`TILE`] slots, row by
/// row within a tile: an interval's entries then write into one tile, a
/// few hundred kB that stays in cache over its slots, and a row's
/// percentile reads its slots a tile's row at a time. A vector per row
/// (or per slot) had every entry of the add (or of the percentile's
/// gather) miss the cache: a month over 1k aliases is 138 MB of these
/// bytes, and the misses were a fifth of the report's time.
pub struct Builder {
    query: Query,
    groups: Vec<Group>,
    by_name: HashMap<String, usize>,
    owners: Vec<String>,
    by_owner: HashMap<String, usize>,
    slots: Vec<Slot>,
    slot_ids: HashMap<(i64, i64), usize>,
    /// Bytes in and out of row g in slot i at `tiles[i / TILE][g * TILE +
    /// i % TILE]`; a tile is shorter when its latest rows had no traffic.
    tiles: Vec<Vec<(u64, u64)>>,
    step_ms: Option<i64>,
}

impl Builder {
    pub fn new(query: Query) -> Self {
        Self {
            query,
            groups: Vec::new(),
            by_name: HashMap::new(),
            owners: Vec::new(),
            by_owner: HashMap::new(),
            slots: Vec::new(),
            slot_ids: HashMap::new(),
            tiles: Vec::new(),
            step_ms: None,
        }
    }

    /// The row `name` (made if new, and then reported) with `owner`.
    pub fn member(&mut self, name: &str, owner: &str) -> Member {
        let owner = match self.by_owner.get(owner) {
            Some(&o) => o,
            None => {
                self.owners.push(owner.to_owned());
                self.by_owner
                    .insert(owner.to_owned(), self.owners.len() - 1);
                self.owners.len() - 1
            }
        };
        let group = match self.by_name.get(name) {
            Some(&g) => g,
            None => {
                self.groups.push(Group {
                    name: name.to_owned(),
                    owner,
                    rx: Counters::default(),
                    tx: Counters::default(),
                });
                self.by_name.insert(name.to_owned(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        Member { group, owner }
    }

    /// One interval `[start_ms, end_ms)` on a grid of `step_ms`, with the
    /// traffic of each row (name, owner) in it.
    pub fn interval<'a>(
        &mut self,
        window: (i64, i64, i64),
        traffic: impl IntoIterator<Item = (&'a str, &'a str, Traffic)>,
    ) {
        let slot = self.slot(window);
        for (name, owner, t) in traffic {
            let member = self.member(name, owner);
            self.add(slot, member, t);
        }
    }

    /// [`Self::interval`] with rows already resolved by [`Self::member`].
    pub fn interval_of(
        &mut self,
        window: (i64, i64, i64),
        traffic: impl IntoIterator<Item = (Member, Traffic)>,
    ) {
        let slot = self.slot(window);
        for (member, t) in traffic {
            self.add(slot, member, t);
        }
    }

    /// The index of the slot an interval lies inside, counting its
    /// coverage; `None` for an interval spanning slots.
    fn slot(&mut self, (start_ms, end_ms, step_ms): (i64, i64, i64)) -> Option<usize> {
        self.step_ms = Some(step_ms);
        let slot = start_ms.div_euclid(step_ms) * step_ms;
        if end_ms > slot + step_ms {
            return None;
        }
        let next = self.slots.len();
        let i = *self.slot_ids.entry((slot, step_ms)).or_insert(next);
        if i == next {
            self.slots.push(Slot {
                at: (slot, step_ms),
                covered_ms: 0,
            });
            if next.is_multiple_of(TILE) {
                // Room for every row so far: most come back in each slot.
                self.tiles
                    .push(Vec::with_capacity(self.groups.len() * TILE));
            }
        }
        self.slots[i].covered_ms += end_ms - start_ms;
        Some(i)
    }

    fn add(&mut self, slot: Option<usize>, member: Member, t: Traffic) {
        let group = &mut self.groups[member.group];
        group.owner = member.owner;
        group.rx += t.rx;
        group.tx += t.tx;
        if let Some(i) = slot {
            let tile = &mut self.tiles[i / TILE];
            let at = member.group * TILE + i % TILE;
            if tile.len() <= at {
                tile.resize((member.group + 1) * TILE, (0, 0));
            }
            tile[at].0 += t.rx.bytes;
            tile[at].1 += t.tx.bytes;
        }
    }

    /// Row `group`'s percentile over the `sampled` slots (their indexes,
    /// in time order), with `rates` to work in.
    fn percentile(
        &self,
        group: usize,
        sampled: &[usize],
        rates: &mut Vec<(f64, f64)>,
    ) -> Option<f64> {
        rates.clear();
        rates.extend(sampled.iter().map(|&i| {
            let at = group * TILE + i % TILE;
            let (rx, tx) = self.tiles[i / TILE].get(at).copied().unwrap_or_default();
            let per_second = 8000.0 / self.slots[i].at.1 as f64;
            (rx as f64 * per_second, tx as f64 * per_second)
        }));
        self.query.rule.apply(self.query.percentile, rates)
    }

    pub fn finish(self) -> Report {
        // The slots intervals cover, in time order.
        let mut sampled: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].covered_ms >= self.slots[i].at.1)
            .collect();
        sampled.sort_unstable_by_key(|&i| self.slots[i].at);
        let q = self.query;
        let mut rates = Vec::with_capacity(sampled.len());
        let mut rows: Vec<Row> = (self.groups.iter().enumerate())
            .map(|(i, g)| Row {
                name: g.name.clone(),
                owner: self.owners[g.owner].clone(),
                rx: g.rx,
                tx: g.tx,
                percentile_bps: self.percentile(i, &sampled, &mut rates),
            })
            .collect();
        rows.sort_unstable_by(|a, b| a.name.cmp(&b.name));
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
///
/// Reading and inflating the blobs (on this thread) and adding them up (on
/// a second one) each take about half of a month's report, so the two run
/// side by side.
pub fn local(store: &Store, query: Query) -> Result<Report, StoreError> {
    let series = store.series()?;
    // A few intervals in flight: enough that neither thread waits on the
    // other's every blob, few enough that memory stays a few blobs'.
    let (send, receive) = mpsc::sync_channel(16);
    thread::scope(|scope| {
        let adder = scope.spawn(|| add_up(query, &series, receive));
        // A send fails only when the adder panicked, which its join
        // passes on.
        let read = store.intervals(query.from_ms, query.to_ms, |i| {
            let _ = send.send(i);
        });
        drop(send);
        let report = adder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        read.map(|()| report)
    })
}

/// The report of `intervals` of the store whose series are `series`.
fn add_up(
    query: Query,
    series: &HashMap<u64, SeriesKey>,
    intervals: mpsc::Receiver<Interval>,
) -> Report {
    let mut builder = Builder::new(query);
    // Each series's row, resolved at its first entry (a row only exists
    // once it has traffic in the period), then by id.
    let ids = series.keys().max().map_or(0, |&m| m as usize + 1);
    let mut members: Vec<Option<Member>> = vec![None; ids];
    let mut resolved = Vec::new();
    for i in intervals {
        for &(id, t) in &i.counts {
            let Some(member) = members.get_mut(id as usize) else {
                continue;
            };
            let m = match member {
                Some(m) => *m,
                None => {
                    let Some(key) = series.get(&id) else { continue };
                    *member.insert(builder.member(query.by.of(key), &key.owner))
                }
            };
            resolved.push((m, t));
        }
        builder.interval_of((i.start_ms, i.end_ms, i.step_ms), resolved.drain(..));
    }
    builder.finish()
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
    fn first_release_intervals_report_beside_new_ones() {
        use crate::history::store::{
            BaselineRecord,
            tests::{key, tempdir},
        };
        let dir = tempdir("report-v0");
        let mut store = Store::open(&dir).unwrap();
        let key = key("192.0.2.1", "a");
        let base = BaselineRecord {
            epoch: "b".into(),
            at_ms: 0,
            counts: Vec::new(),
        };
        store
            .write(Some((0, 1000, 1000)), &[(key, t(300, 40))], &base)
            .unwrap();
        // The same series (id 1) in the first release's format: 3 packets
        // and 426 bytes in, 1 packet and 255 bytes out.
        let legacy = [1u8, 3, 0xaa, 0x03, 1, 0xff, 0x01];
        let (db, _) = store.db();
        db.execute(
            "INSERT INTO intervals VALUES (1000, 2000, 1000, ?1)",
            [&legacy[..]],
        )
        .unwrap();
        let r = local(&store, query(Rule::In)).unwrap();
        assert_eq!((r.sampled, r.rows.len()), (2, 1));
        assert_eq!(r.rows[0].rx, Counters::new(4, 726));
        assert_eq!(r.rows[0].tx, Counters::new(2, 295));
        // Slot rates in: 2400 and 3408 bit/s; N < 20, so the largest.
        assert_eq!(r.rows[0].percentile_bps, Some(3408.0));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rows_keep_their_slots_across_tiles_and_late_rows_rate_zero_before() {
        let mut b = Builder::new(Query {
            to_ms: 150_000,
            percentile: "80".parse().unwrap(),
            ..query(Rule::In)
        });
        // More slots than a tile holds; b only from slot 100 on.
        for k in 0..150 {
            let late = (k >= 100).then_some(("b", "", t(1000, 0)));
            let traffic = [("a", "", t(k as u64, 0))].into_iter().chain(late);
            b.interval((k * 1000, (k + 1) * 1000, 1000), traffic);
        }
        let r = b.finish();
        assert_eq!((r.sampled, r.total), (150, 150));
        // Rank ⌈0.8 · 150⌉ = 120: a's 120th smallest is slot 119's 119 B
        // a second; b's 100 zeros and 50 times 1000 B put 1000 B there.
        assert_eq!(r.rows[0].percentile_bps, Some(952.0));
        assert_eq!(r.rows[1].percentile_bps, Some(8000.0));
        assert_eq!(r.rows[1].rx, Counters::new(50, 50_000));
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
