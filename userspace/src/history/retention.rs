//! Retention: every interval at full resolution for [`FULL_DAYS`], then
//! one row per hour up to [`KEEP_DAYS`], then nothing.
//!
//! [`FULL_DAYS`] covers the current and the previous billing month
//! whatever the billing day (at most 62 days back from today). An hour is
//! rolled up only when its intervals cover all of it, so an hourly row
//! still means "sampled throughout"; an hour with a gap keeps its
//! intervals until they expire.

use std::collections::BTreeMap;

use rusqlite::params;

use super::{
    codec::{self, Traffic},
    store::{Store, StoreError, classify},
};

pub const FULL_DAYS: i64 = 100;
/// Thirteen months and a bit: last year's same month stays comparable.
pub const KEEP_DAYS: i64 = 400;
pub const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// What one [`compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub expired: usize,
    pub rolled_hours: usize,
}

/// Expires and rolls up what `now_ms` makes old, in one transaction.
pub fn compact(store: &mut Store, now_ms: i64) -> Result<Compacted, StoreError> {
    let (db, path) = store.db();
    let err = |e| classify(path, "compact", e);
    let tx = db.transaction().map_err(err)?;
    let expired = tx
        .execute(
            "DELETE FROM intervals WHERE end_ms <= ?1",
            params![now_ms - KEEP_DAYS * DAY_MS],
        )
        .map_err(err)?;
    let hours = fine_hours(&tx, now_ms - FULL_DAYS * DAY_MS).map_err(err)?;
    let mut rolled_hours = 0;
    for (hour, rows) in hours {
        let covered: i64 = rows.iter().map(|r| r.1 - r.0).sum();
        if covered < HOUR_MS || rows.iter().any(|r| r.1 > hour + HOUR_MS) {
            continue;
        }
        let mut sum: BTreeMap<u64, Traffic> = BTreeMap::new();
        for (_, _, blob) in &rows {
            codec::decode_interval(blob, |id, t| *sum.entry(id).or_default() += t).map_err(
                |source| StoreError::Damaged {
                    path: path.to_owned(),
                    source,
                },
            )?;
        }
        let merged: Vec<(u64, Traffic)> = sum.into_iter().collect();
        tx.execute(
            "DELETE FROM intervals WHERE start_ms >= ?1 AND end_ms <= ?2",
            params![hour, hour + HOUR_MS],
        )
        .and_then(|_| {
            tx.execute(
                "INSERT INTO intervals VALUES (?1, ?2, ?3, ?4)",
                params![
                    hour,
                    hour + HOUR_MS,
                    HOUR_MS,
                    codec::encode_interval(&merged)
                ],
            )
        })
        .map_err(err)?;
        rolled_hours += 1;
    }
    tx.commit().map_err(err)?;
    Ok(Compacted {
        expired,
        rolled_hours,
    })
}

/// Stored intervals as (start, end, counts blob), by the hour they start
/// in.
type Hours = BTreeMap<i64, Vec<(i64, i64, Vec<u8>)>>;

/// Intervals finer than an hour ending before `before_ms`, by hour.
fn fine_hours(db: &rusqlite::Connection, before_ms: i64) -> rusqlite::Result<Hours> {
    let mut stmt = db.prepare(
        "SELECT start_ms, end_ms, counts FROM intervals WHERE end_ms <= ?1 AND step_ms < ?2",
    )?;
    let mut hours: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for row in stmt.query_map(params![before_ms, HOUR_MS], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })? {
        let row: (i64, i64, Vec<u8>) = row?;
        hours
            .entry(row.0.div_euclid(HOUR_MS) * HOUR_MS)
            .or_default()
            .push(row);
    }
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use common::Counters;

    use super::*;
    use crate::history::store::{
        BaselineRecord,
        tests::{key, tempdir},
    };

    #[test]
    fn old_hours_roll_up_and_older_ones_expire() {
        let dir = tempdir("retention");
        let mut store = Store::open(&dir).unwrap();
        let key = key("192.0.2.1", "a");
        let t = Traffic {
            rx: Counters::new(1, 100),
            tx: Counters::default(),
        };
        let base = BaselineRecord {
            epoch: "b".into(),
            at_ms: 0,
            counts: Vec::new(),
        };
        let step = 300_000;
        // Hour 0: full; hour 1: one interval missing.
        for start in (0..2 * HOUR_MS)
            .step_by(step as usize)
            .filter(|&s| s != HOUR_MS + step)
        {
            store
                .write(
                    Some((start, start + step, step)),
                    &[(key.clone(), t)],
                    &base,
                )
                .unwrap();
        }
        let now = FULL_DAYS * DAY_MS + 2 * HOUR_MS;
        assert_eq!(
            compact(&mut store, now).unwrap(),
            Compacted {
                expired: 0,
                rolled_hours: 1
            }
        );
        let mut rows = Vec::new();
        store
            .intervals(-1, 3 * HOUR_MS, |i| {
                rows.push((i.start_ms, i.step_ms, i.counts))
            })
            .unwrap();
        assert_eq!(rows.len(), 1 + 11);
        let rx = Traffic {
            rx: Counters::new(12, 1200),
            tx: Counters::default(),
        };
        assert_eq!(rows[0], (0, HOUR_MS, vec![(1, rx)]));
        let later = KEEP_DAYS * DAY_MS + 2 * HOUR_MS;
        assert_eq!(
            compact(&mut store, later).unwrap(),
            Compacted {
                expired: 12,
                rolled_hours: 0
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
