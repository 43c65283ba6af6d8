//! The daemon's own record of peers: those whose kernel entry was freed
//! after `--peer-idle`, kept for `--peer-retention` after their last
//! packet. A table of the state directory's database
//! ([`crate::history::store`], `history.db`). A save writes, in one
//! transaction, only the peers changed since the last one (upserted) and
//! those dropped (deleted), so that a crash leaves either the old record
//! or the new one, and a sweep that moved a few pairs writes a few rows,
//! not the whole record (BENCHMARKS.md, "Peers at a full table").
//!
//! The record is behind this small interface (load, add, expire, save,
//! entries) so that its callers do not know where it is kept.

use std::{
    collections::{BTreeMap, BTreeSet, btree_map::Entry},
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
    /// What the next save writes.
    unsaved: Unsaved,
    peers: BTreeMap<PairKey, Totals>,
}

/// What changed since the last successful save.
#[derive(Debug, Default)]
struct Unsaved {
    /// Peers added to or dropped: each is upserted if it is in the record
    /// and deleted if not.
    keys: BTreeSet<PairKey>,
    /// The whole table is rewritten: the database was opened again after a
    /// failure, and may be a new one that lacks the peers not changed.
    all: bool,
}

impl Unsaved {
    fn is_empty(&self) -> bool {
        !self.all && self.keys.is_empty()
    }
}

impl Record {
    /// The record in the database under `state_dir` (created if need be),
    /// with an old `peers.json` imported into it.
    pub fn load(state_dir: &Path) -> Result<Self, RecordError> {
        let mut record = Self {
            state_dir: state_dir.to_owned(),
            store: None,
            loaded: false,
            unsaved: Unsaved::default(),
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
                unsaved: Unsaved::default(),
                peers: BTreeMap::new(),
            }
        })
    }

    /// Opens the database, takes in its table (once) and an old
    /// `peers.json`, and keeps the database for the saves.
    fn attach(&mut self) -> Result<(), RecordError> {
        let mut store = Store::open(&self.state_dir)?;
        if self.loaded {
            self.unsaved.all = true;
        } else {
            for (key, totals) in read_table(&mut store)? {
                // A row already on disk needs no write unless the record
                // kept in memory meanwhile has the same peer.
                match self.peers.entry(key) {
                    Entry::Vacant(row) => {
                        row.insert(totals);
                    }
                    Entry::Occupied(mut kept) => {
                        kept.get_mut().merge(&totals);
                        self.unsaved.keys.insert(kept.key().clone());
                    }
                }
            }
            self.loaded = true;
        }
        let old = self.state_dir.join(OLD_FILE);
        if let Some(imported) = read_old(&old) {
            for (key, totals) in imported {
                self.add(key, totals);
            }
            write_table(&mut store, &self.peers, &self.unsaved)?;
            self.unsaved = Unsaved::default();
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
            .entry(key.clone())
            .or_insert(Totals::EMPTY)
            .merge(&totals);
        self.unsaved.keys.insert(key);
    }

    /// Drops the peers last seen before `before`; returns how many.
    pub fn expire(&mut self, before: SystemTime) -> usize {
        let cut = time::unix_ms(before);
        let was = self.peers.len();
        let unsaved = &mut self.unsaved.keys;
        self.peers.retain(|key, t| {
            let keep = t.last_seen_ms >= cut;
            if !keep {
                unsaved.insert(key.clone());
            }
            keep
        });
        was - self.peers.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&PairKey, &Totals)> {
        self.peers.iter()
    }

    /// Writes the record if it changed since the last save, opening the
    /// database first if it could not be before. On failure the record
    /// stays in memory and the next save tries again.
    pub fn save(&mut self) -> Result<(), RecordError> {
        if self.unsaved.is_empty() {
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
            if let Err(e) = write_table(store, &self.peers, &self.unsaved) {
                // Opened afresh next time, as the history does.
                self.store = None;
                return Err(e.into());
            }
            self.unsaved = Unsaved::default();
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

/// Writes what `unsaved` names of `peers` in one transaction: the whole
/// table when it says so, else an upsert of each changed peer still in the
/// record and a delete of each dropped one.
fn write_table(
    store: &mut Store,
    peers: &BTreeMap<PairKey, Totals>,
    unsaved: &Unsaved,
) -> Result<(), StoreError> {
    let (db, path) = store.db();
    let err = |e| classify(path, "write the peers to", e);
    let tx = db.transaction().map_err(err)?;
    let keys: Box<dyn Iterator<Item = &PairKey>> = if unsaved.all {
        tx.execute("DELETE FROM peers", []).map_err(err)?;
        Box::new(peers.keys())
    } else {
        Box::new(unsaved.keys.iter())
    };
    write_rows(&tx, peers, keys).map_err(err)?;
    tx.commit().map_err(err)
}

/// Each of `keys` as it is in `peers`: its row upserted, or deleted when
/// the record no longer has it.
fn write_rows<'a>(
    db: &Connection,
    peers: &BTreeMap<PairKey, Totals>,
    keys: impl Iterator<Item = &'a PairKey>,
) -> rusqlite::Result<()> {
    // The primary key is (interface, address, peer): a row of the same
    // pair is replaced, any other left alone.
    let mut upsert = db.prepare_cached(
        "INSERT OR REPLACE INTO peers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    let mut delete =
        db.prepare_cached("DELETE FROM peers WHERE interface = ?1 AND address = ?2 AND peer = ?3")?;
    for key in keys {
        let (interface, address, peer) = (
            &key.interface,
            key.address.to_string(),
            key.peer.to_string(),
        );
        match peers.get(key) {
            // SQLite integers are i64: the u64 is kept bit for bit.
            Some(t) => upsert.execute(params![
                interface,
                address,
                peer,
                t.rx_packets as i64,
                t.rx_bytes as i64,
                t.tx_packets as i64,
                t.tx_bytes as i64,
                t.first_seen_ms as i64,
                t.last_seen_ms as i64,
            ])?,
            None => delete.execute(params![interface, address, peer])?,
        };
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
    /// The peers' rows as they are on disk.
    fn on_disk(dir: &Path) -> Vec<(String, i64)> {
        let db = Connection::open(dir.join(store::FILE)).unwrap();
        let mut stmt = db
            .prepare("SELECT peer, rx_packets FROM peers ORDER BY peer")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_save_writes_only_the_peers_that_changed() {
        let dir = tempdir("peers-changed");
        let mut record = Record::load(&dir).unwrap();
        for (peer, last) in [
            ("203.0.113.1", 5_000),
            ("203.0.113.2", 8_000),
            ("203.0.113.3", 5_000),
        ] {
            record.add(key(peer), totals(1, 1_000, last));
        }
        record.save().unwrap();
        // A row the record does not touch again is left as it is on disk.
        Connection::open(dir.join(store::FILE))
            .unwrap()
            .execute(
                "UPDATE peers SET rx_packets = 77 WHERE peer = '203.0.113.2'",
                [],
            )
            .unwrap();
        record.add(key("203.0.113.1"), totals(2, 6_000, 9_000));
        record.add(key("203.0.113.3"), totals(1, 1_000, 2_000));
        assert_eq!(record.expire(time::from_unix_ms(5_500)), 1);
        record.save().unwrap();
        assert_eq!(
            on_disk(&dir),
            [
                ("203.0.113.1".to_owned(), 3),
                ("203.0.113.2".to_owned(), 77)
            ]
        );
        // Nothing changed: nothing is written.
        Connection::open(dir.join(store::FILE))
            .unwrap()
            .execute("DELETE FROM peers WHERE peer = '203.0.113.1'", [])
            .unwrap();
        record.save().unwrap();
        assert_eq!(on_disk(&dir), [("203.0.113.2".to_owned(), 77)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_database_opened_again_after_a_failure_gets_the_whole_record() {
        let dir = tempdir("peers-reopen");
        let mut record = Record::load(&dir).unwrap();
        record.add(key("203.0.113.1"), totals(1, 1_000, 5_000));
        record.save().unwrap();
        let holder = Connection::open(dir.join(store::FILE)).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        record.add(key("203.0.113.2"), totals(2, 1_000, 5_000));
        assert!(matches!(
            record.save(),
            Err(RecordError::Store(StoreError::Locked { .. }))
        ));
        drop(holder);
        // Moved aside while it was locked, as the corrupt-database error
        // tells a user to: the new database has every peer, not only the
        // changed one.
        for file in ["history.db", "history.db-wal", "history.db-shm"] {
            let _ = fs::remove_file(dir.join(file));
        }
        record.save().unwrap();
        assert_eq!(
            on_disk(&dir),
            [("203.0.113.1".to_owned(), 1), ("203.0.113.2".to_owned(), 2)]
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
