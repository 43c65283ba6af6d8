//! The daemon's own record of peers: those whose kernel entry was freed
//! after `--peer-idle`, kept for `--peer-retention` after their last
//! packet. A table of the state directory's database
//! ([`crate::history::store`], `history.db`), rewritten in one transaction
//! after every change, so that a crash leaves either the old record or the
//! new one.
//!
//! The record is behind this small interface (load, add, expire, save,
//! entries) so that its callers do not know where it is kept.

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
    time::SystemTime,
};

use log::{error, info};
use rusqlite::{Connection, params};
use serde::Deserialize;

use super::{PairKey, Totals, time};
use crate::history::{
    Store, StoreError,
    store::{self, classify},
};

/// The JSON file earlier releases kept the record in; imported once.
pub const OLD_FILE: &str = "peers.json";
/// The old file's format version.
const OLD_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("failed to read the old peer record `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the old peer record `{}` is not one this aliasstat can read", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the peer record cannot use the state directory's database")]
    Store(#[from] StoreError),
}

#[derive(Deserialize)]
struct OldFile {
    version: u32,
    peers: Vec<OldPeer>,
}

#[derive(Deserialize)]
struct OldPeer {
    #[serde(flatten)]
    key: PairKey,
    #[serde(flatten)]
    totals: Totals,
}

pub struct Record {
    state_dir: PathBuf,
    /// `None` while the database cannot be opened: the record is kept in
    /// memory and the database tried again at every save.
    store: Option<Store>,
    /// Whether the table's peers are in `peers` already, so that a
    /// database opened again is written, not added in a second time.
    loaded: bool,
    /// Changed since the last successful save.
    unsaved: bool,
    peers: BTreeMap<PairKey, Totals>,
}

impl Record {
    /// The record in the database under `state_dir` (created if need be),
    /// with an old `peers.json` imported into it.
    pub fn load(state_dir: &Path) -> Result<Self, RecordError> {
        let mut record = Self {
            state_dir: state_dir.to_owned(),
            store: None,
            loaded: false,
            unsaved: false,
            peers: BTreeMap::new(),
        };
        record.attach()?;
        Ok(record)
    }

    /// [`Record::load`], but a database that cannot be used (corrupt,
    /// locked, an unwritable directory) does not stop the daemon: the
    /// record starts empty in memory, and is saved, together with what the
    /// database held, once the database works again.
    pub fn load_or_empty(state_dir: &Path) -> Self {
        Self::load(state_dir).unwrap_or_else(|e| {
            error!(
                "peers: {}; the peer record starts empty and is kept in memory until the database can be written",
                crate::top::chain(&e)
            );
            Self {
                state_dir: state_dir.to_owned(),
                store: None,
                loaded: false,
                unsaved: false,
                peers: BTreeMap::new(),
            }
        })
    }

    /// Opens the database, takes in its table (once) and an old
    /// `peers.json`, and keeps the database for the saves.
    fn attach(&mut self) -> Result<(), RecordError> {
        let mut store = Store::open(&self.state_dir)?;
        if !self.loaded {
            for (key, totals) in read_table(&mut store)? {
                self.add(key, totals);
            }
            self.loaded = true;
        }
        let old = self.state_dir.join(OLD_FILE);
        if let Some(imported) = read_old(&old) {
            for (key, totals) in imported {
                self.add(key, totals);
            }
            write_table(&mut store, &self.peers)?;
            self.unsaved = false;
            // After the commit: a crash just before this rename imports the
            // file again at the next start, the one case that counts twice.
            let done = old.with_extension("json.imported");
            match fs::rename(&old, &done) {
                Ok(()) => info!(
                    "peers: imported `{}` into `{}` and renamed it to `{}`",
                    old.display(),
                    store.path().display(),
                    done.display()
                ),
                Err(e) => error!(
                    "peers: imported `{}` into `{}` but could not rename it ({e}); move it aside, or the next start imports it again",
                    old.display(),
                    store.path().display()
                ),
            }
        }
        self.store = Some(store);
        Ok(())
    }

    /// Adds the totals of a freed kernel entry to the peer's.
    pub fn add(&mut self, key: PairKey, totals: Totals) {
        self.peers
            .entry(key)
            .or_insert(Totals::EMPTY)
            .merge(&totals);
        self.unsaved = true;
    }

    /// Drops the peers last seen before `before`; returns how many.
    pub fn expire(&mut self, before: SystemTime) -> usize {
        let cut = time::unix_ms(before);
        let was = self.peers.len();
        self.peers.retain(|_, t| t.last_seen_ms >= cut);
        let dropped = was - self.peers.len();
        self.unsaved |= dropped > 0;
        dropped
    }

    pub fn entries(&self) -> impl Iterator<Item = (&PairKey, &Totals)> {
        self.peers.iter()
    }

    /// Writes the record if it changed since the last save, opening the
    /// database first if it could not be before. On failure the record
    /// stays in memory and the next save tries again.
    pub fn save(&mut self) -> Result<(), RecordError> {
        if !self.unsaved {
            return Ok(());
        }
        if self.store.is_none() {
            self.attach()?;
            info!(
                "peers: the peer record is saved in `{}` again",
                self.state_dir.join(store::FILE).display()
            );
        }
        if let Some(store) = &mut self.store {
            if let Err(e) = write_table(store, &self.peers) {
                // Opened afresh next time, as the history does.
                self.store = None;
                return Err(e.into());
            }
            self.unsaved = false;
        }
        Ok(())
    }
}

/// The old JSON record, if there is one that can be read; one that cannot
/// is moved aside to `peers.json.unreadable` and left out.
fn read_old(path: &Path) -> Option<Vec<(PairKey, Totals)>> {
    let parse = |source| RecordError::Parse {
        path: path.to_owned(),
        source,
    };
    let read = match fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<OldFile>(&bytes)
            .map_err(parse)
            .and_then(|file| match file.version {
                OLD_VERSION => Ok(file.peers),
                v => Err(parse(serde::de::Error::custom(format!(
                    "format version {v} (this aliasstat imports {OLD_VERSION})"
                )))),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(source) => Err(RecordError::Read {
            path: path.to_owned(),
            source,
        }),
    };
    match read {
        Ok(peers) => Some(peers.into_iter().map(|p| (p.key, p.totals)).collect()),
        Err(e) => {
            let kept = path.with_extension("json.unreadable");
            let moved = if matches!(e, RecordError::Parse { .. }) && fs::rename(path, &kept).is_ok()
            {
                format!("; moved it to `{}`", kept.display())
            } else {
                String::new()
            };
            error!(
                "peers: {}{moved}; it is not imported",
                crate::top::chain(&e)
            );
            None
        }
    }
}

fn read_table(store: &mut Store) -> Result<Vec<(PairKey, Totals)>, StoreError> {
    let (db, path) = store.db();
    let err = |e| classify(path, "read the peers of", e);
    let mut stmt = db
        .prepare(
            "SELECT interface, address, peer, rx_packets, rx_bytes, tx_packets, tx_bytes,
                    first_seen_ms, last_seen_ms FROM peers",
        )
        .map_err(err)?;
    let rows = stmt
        .query_map([], |r| {
            let parsed = |i: usize, text: String| {
                rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    format!("`{text}` is not an address").into(),
                )
            };
            let address: String = r.get(1)?;
            let peer: String = r.get(2)?;
            // Counts are stored as the i64 of the same bits: see write_table.
            let count = |i| r.get::<_, i64>(i).map(|v| v as u64);
            Ok((
                PairKey {
                    interface: r.get(0)?,
                    address: address.parse().map_err(|_| parsed(1, address.clone()))?,
                    peer: peer.parse().map_err(|_| parsed(2, peer.clone()))?,
                },
                Totals {
                    rx_packets: count(3)?,
                    rx_bytes: count(4)?,
                    tx_packets: count(5)?,
                    tx_bytes: count(6)?,
                    first_seen_ms: count(7)?,
                    last_seen_ms: count(8)?,
                },
            ))
        })
        .map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

/// Replaces the table with `peers` in one transaction. The record is
/// bounded by `--peer-retention` and rewritten only when a sweep changed
/// it, as the JSON file was.
fn write_table(store: &mut Store, peers: &BTreeMap<PairKey, Totals>) -> Result<(), StoreError> {
    let (db, path) = store.db();
    let err = |e| classify(path, "write the peers to", e);
    let tx = db.transaction().map_err(err)?;
    tx.execute("DELETE FROM peers", []).map_err(err)?;
    insert_all(&tx, peers).map_err(err)?;
    tx.commit().map_err(err)
}

fn insert_all(db: &Connection, peers: &BTreeMap<PairKey, Totals>) -> rusqlite::Result<()> {
    let mut insert =
        db.prepare_cached("INSERT INTO peers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?;
    for (key, t) in peers {
        // SQLite integers are i64: the u64 is kept bit for bit.
        insert.execute(params![
            key.interface,
            key.address.to_string(),
            key.peer.to_string(),
            t.rx_packets as i64,
            t.rx_bytes as i64,
            t.tx_packets as i64,
            t.tx_bytes as i64,
            t.first_seen_ms as i64,
            t.last_seen_ms as i64,
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::store::tests::tempdir;

    fn key(peer: &str) -> PairKey {
        PairKey {
            interface: "eth0".into(),
            address: "10.0.0.5".parse().unwrap(),
            peer: peer.parse().unwrap(),
        }
    }

    fn totals(packets: u64, first: u64, last: u64) -> Totals {
        Totals {
            rx_packets: packets,
            rx_bytes: packets * 100,
            tx_packets: 1,
            tx_bytes: 50,
            first_seen_ms: first,
            last_seen_ms: last,
        }
    }

    fn entries(record: &Record) -> Vec<(PairKey, Totals)> {
        record.entries().map(|(k, t)| (k.clone(), *t)).collect()
    }

    #[test]
    fn adds_sum_expire_and_survive_a_reload() {
        let dir = tempdir("peers-table");
        let mut record = Record::load(&dir).unwrap();
        record.add(key("203.0.113.7"), totals(3, 1_000, 5_000));
        record.add(key("203.0.113.7"), totals(2, 8_000, 9_000));
        record.add(key("2001:db8:1:2::/64"), totals(1, 2_000, 2_000));
        // Counts past i64::MAX keep their bits in SQLite's i64.
        record.add(key("203.0.113.9"), totals(u64::MAX / 100, 1, u64::MAX));
        record.save().unwrap();
        drop(record);
        let mut again = Record::load(&dir).unwrap();
        let mut both = totals(5, 1_000, 9_000);
        both.tx_packets = 2;
        both.tx_bytes = 100;
        assert_eq!(
            entries(&again),
            [
                (key("203.0.113.7"), both),
                (key("203.0.113.9"), totals(u64::MAX / 100, 1, u64::MAX)),
                (key("2001:db8:1:2::/64"), totals(1, 2_000, 2_000)),
            ]
        );
        assert_eq!(again.expire(time::from_unix_ms(3_000)), 1);
        again.save().unwrap();
        drop(again);
        assert_eq!(Record::load(&dir).unwrap().entries().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_old_json_record_is_imported_once() {
        let dir = tempdir("peers-import");
        let mut record = Record::load(&dir).unwrap();
        record.add(key("203.0.113.7"), totals(3, 1_000, 5_000));
        record.save().unwrap();
        drop(record);
        fs::write(
            dir.join(OLD_FILE),
            r#"{"version":1,"peers":[
                {"interface":"eth0","address":"10.0.0.5","peer":"203.0.113.7",
                 "rx_packets":2,"rx_bytes":200,"tx_packets":1,"tx_bytes":50,
                 "first_seen_ms":500,"last_seen_ms":600},
                {"interface":"eth0","address":"10.0.0.5","peer":"2001:db8:1:2::/64",
                 "rx_packets":1,"rx_bytes":100,"tx_packets":1,"tx_bytes":50,
                 "first_seen_ms":2000,"last_seen_ms":2000}]}"#,
        )
        .unwrap();
        let mut both = totals(5, 500, 5_000);
        both.tx_packets = 2;
        both.tx_bytes = 100;
        let want = [
            (key("203.0.113.7"), both),
            (key("2001:db8:1:2::/64"), totals(1, 2_000, 2_000)),
        ];
        assert_eq!(entries(&Record::load(&dir).unwrap()), want);
        assert!(!dir.join(OLD_FILE).exists());
        assert!(dir.join("peers.json.imported").exists());
        // Imported and saved: a second start reads the same, once.
        assert_eq!(entries(&Record::load(&dir).unwrap()), want);

        fs::write(dir.join(OLD_FILE), br#"{"version":9,"peers":[]}"#).unwrap();
        assert_eq!(entries(&Record::load(&dir).unwrap()), want);
        assert!(dir.join("peers.json.unreadable").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_database_keeps_the_record_in_memory() {
        let dir = tempdir("peers-corrupt");
        fs::write(dir.join(store::FILE), vec![0x55; 8192]).unwrap();
        let mut record = Record::load_or_empty(&dir);
        record.add(key("203.0.113.7"), totals(3, 1_000, 5_000));
        assert!(matches!(
            record.save(),
            Err(RecordError::Store(StoreError::Corrupt { .. }))
        ));
        assert_eq!(entries(&record).len(), 1);
        // Once the database is usable again, the record is written there.
        fs::remove_file(dir.join(store::FILE)).unwrap();
        record.save().unwrap();
        assert_eq!(
            entries(&Record::load(&dir).unwrap()),
            [(key("203.0.113.7"), totals(3, 1_000, 5_000))]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
