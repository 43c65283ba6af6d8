//! The history database: SQLite in WAL mode at `<state-dir>/history.db`.
//!
//! Tables:
//! - `series`: one row per (interface, address, alias, owner) ever seen,
//!   so an alias renamed or moved to another owner starts a new series and
//!   old intervals keep the names they had then;
//! - `intervals`: one row per sample, `[start_ms, end_ms)` on a grid of
//!   `step_ms`, its counts in one blob ([`codec`]);
//! - `baseline`: the raw kernel counters at the last sample and which maps
//!   they came from, written in the same transaction as the interval, so a
//!   crash never leaves an interval without its baseline or the reverse.
//!
//! - `peers`: the peers' retention record ([`crate::peers::record`]), one
//!   row per (interface, local address, peer), read and written by that
//!   module. It is kept with `--no-history` too: this is the state
//!   directory's database, not only the history's.
//!
//! A new table is one more `CREATE TABLE IF NOT EXISTS` in [`SCHEMA`] and
//! a `user_version` step.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension as _, params};

use super::codec::{self, Baseline, Damaged, Traffic};

/// The file under `--state-dir`.
pub const FILE: &str = "history.db";

/// How long a statement waits for another connection's lock before it
/// fails: long enough for the daemon's write of an interval, short enough
/// that a stuck lock is reported instead of hanging.
const BUSY_WAIT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        interface TEXT NOT NULL,
        address TEXT NOT NULL,
        alias TEXT NOT NULL,
        owner TEXT NOT NULL,
        UNIQUE (interface, address, alias, owner)
    );
    CREATE TABLE IF NOT EXISTS intervals (
        start_ms INTEGER PRIMARY KEY,
        end_ms INTEGER NOT NULL,
        step_ms INTEGER NOT NULL,
        counts BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS baseline (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        epoch TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        counts BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS peers (
        interface TEXT NOT NULL,
        address TEXT NOT NULL,
        peer TEXT NOT NULL,
        rx_packets INTEGER NOT NULL,
        rx_bytes INTEGER NOT NULL,
        tx_packets INTEGER NOT NULL,
        tx_bytes INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (interface, address, peer)
    ) WITHOUT ROWID;
    PRAGMA user_version = 2;
";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no history at `{}`: `aliasstat run` writes it there every --history-interval; give its --state-dir",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error(
        "the history database `{}` is locked by another process; `fuser -v {}` shows which, and it is retried at the next interval",
        path.display(), path.display()
    )]
    Locked { path: PathBuf },
    #[error(
        "`{}` is not a usable history database (corrupt or not SQLite): move it aside and the daemon starts a new one",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory `{}`: check its owner and mode, or give another --state-dir", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {what} the history database `{}`", path.display())]
    Sql {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("history database `{}`", path.display())]
    Damaged {
        path: PathBuf,
        #[source]
        source: Damaged,
    },
}

/// What a series is named by, as it was when its traffic was counted.
/// `alias` and `owner` are empty for an undocumented address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub interface: String,
    pub address: String,
    pub alias: String,
    pub owner: String,
}

/// One stored interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start_ms: i64,
    pub end_ms: i64,
    /// The grid the interval lies on (`--history-interval`, or an hour
    /// for rolled-up old intervals).
    pub step_ms: i64,
    pub counts: Vec<(u64, Traffic)>,
}

/// The counters an interval's deltas were taken against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineRecord {
    /// Which boot and which maps the counters came from.
    pub epoch: String,
    pub at_ms: i64,
    pub counts: Baseline,
}

pub struct Store {
    db: Connection,
    path: PathBuf,
    /// Every series's id.
    ids: HashMap<SeriesKey, u64>,
}

impl Store {
    /// Opens (creating if needed) the database under `dir` for writing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE);
        let db = Connection::open(&path).map_err(|e| classify(&path, "open", e))?;
        let mut store = Self::new(db, path)?;
        store.setup()?;
        Ok(store)
    }

    /// Opens an existing database under `dir` read-only, for reports.
    pub fn open_read(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE);
        if !path.exists() {
            return Err(StoreError::Missing { path });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db =
            Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, "open", e))?;
        let store = Self::new(db, path)?;
        // The daemon creates the file at its first sample and its tables a
        // moment later: a reader in between finds no history yet, as if
        // the file were not there, rather than a failed query.
        let tables: i64 = store
            .db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('series', 'intervals')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| classify(&store.path, "read", e))?;
        if tables < 2 {
            return Err(StoreError::Missing { path: store.path });
        }
        Ok(store)
    }

    fn new(db: Connection, path: PathBuf) -> Result<Self, StoreError> {
        db.busy_timeout(BUSY_WAIT)
            .map_err(|e| classify(&path, "open", e))?;
        // Reading the schema is the first real access: a file that is not
        // SQLite or is locked exclusively fails here, with its reason.
        db.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| classify(&path, "read", e))?;
        Ok(Self {
            db,
            path,
            ids: HashMap::new(),
        })
    }

    fn setup(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, "set up", e);
        // WAL: a crash mid-write leaves the last committed interval, and
        // `report` reads while the daemon writes. NORMAL is durable
        // against a crash of the process; a power cut may lose the last
        // transaction, which the next interval then covers.
        self.db
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        self.db
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        self.db.execute_batch(SCHEMA).map_err(err)?;
        self.ids = self.series()?.into_iter().map(|(id, k)| (k, id)).collect();
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every series by id.
    pub fn series(&self) -> Result<HashMap<u64, SeriesKey>, StoreError> {
        let err = |e| classify(&self.path, "read", e);
        let mut stmt = self
            .db
            .prepare("SELECT id, interface, address, alias, owner FROM series")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    SeriesKey {
                        interface: r.get(1)?,
                        address: r.get(2)?,
                        alias: r.get(3)?,
                        owner: r.get(4)?,
                    },
                ))
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The baseline of the last sample, if any.
    pub fn baseline(&self) -> Result<Option<BaselineRecord>, StoreError> {
        let row = self
            .db
            .query_row(
                "SELECT epoch, at_ms, counts FROM baseline WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?)),
            )
            .optional()
            .map_err(|e| classify(&self.path, "read", e))?;
        row.map(|(epoch, at_ms, blob)| {
            let counts = codec::decode_baseline(&blob).map_err(|source| StoreError::Damaged {
                path: self.path.clone(),
                source,
            })?;
            Ok(BaselineRecord {
                epoch,
                at_ms,
                counts,
            })
        })
        .transpose()
    }

    /// Writes one interval of per-series traffic (none when `window` is
    /// `None`) and the baseline it leaves, in one transaction: both or
    /// neither.
    pub fn write(
        &mut self,
        window: Option<(i64, i64, i64)>,
        traffic: &[(SeriesKey, Traffic)],
        baseline: &BaselineRecord,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, "write to", e);
        let tx = self.db.transaction().map_err(err)?;
        let mut added = Vec::new();
        let mut counts = Vec::with_capacity(traffic.len());
        for (key, t) in traffic.iter().filter(|(_, t)| !t.is_zero()) {
            let id = match self.ids.get(key) {
                Some(&id) => id,
                None => {
                    let id = insert_series(&tx, key).map_err(err)?;
                    added.push((key.clone(), id));
                    id
                }
            };
            counts.push((id, *t));
        }
        counts.sort_unstable_by_key(|(id, _)| *id);
        if let Some((start_ms, end_ms, step_ms)) = window {
            let blob = codec::encode_interval(&counts);
            tx.prepare_cached("INSERT OR REPLACE INTO intervals VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| s.execute(params![start_ms, end_ms, step_ms, blob]))
                .map_err(err)?;
        }
        tx.prepare_cached("INSERT OR REPLACE INTO baseline VALUES (1, ?1, ?2, ?3)")
            .and_then(|mut s| {
                let blob = codec::encode_baseline(&baseline.counts);
                s.execute(params![baseline.epoch, baseline.at_ms, blob])
            })
            .map_err(err)?;
        tx.commit().map_err(err)?;
        // Only once committed: a rolled-back series must be inserted again.
        self.ids.extend(added);
        Ok(())
    }

    /// Calls `each` with every interval that ends in `(from_ms, to_ms]`,
    /// in time order: an interval belongs to the period it ends in.
    pub fn intervals(
        &self,
        from_ms: i64,
        to_ms: i64,
        mut each: impl FnMut(Interval),
    ) -> Result<(), StoreError> {
        let err = |e| classify(&self.path, "read", e);
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT start_ms, end_ms, step_ms, counts FROM intervals
                 WHERE end_ms > ?1 AND end_ms <= ?2 ORDER BY start_ms",
            )
            .map_err(err)?;
        let mut rows = stmt.query(params![from_ms, to_ms]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let blob = row.get_ref(3).and_then(|v| Ok(v.as_blob()?)).map_err(err)?;
            let mut counts = Vec::new();
            codec::decode_interval(blob, |id, t| counts.push((id, t))).map_err(|source| {
                StoreError::Damaged {
                    path: self.path.clone(),
                    source,
                }
            })?;
            each(Interval {
                start_ms: row.get(0).map_err(err)?,
                end_ms: row.get(1).map_err(err)?,
                step_ms: row.get(2).map_err(err)?,
                counts,
            });
        }
        Ok(())
    }

    /// Rows and bytes of the database file, for the bench.
    pub fn size(&self) -> Result<u64, StoreError> {
        self.db
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|b| b as u64)
            .map_err(|e| classify(&self.path, "read", e))
    }

    pub(crate) fn db(&mut self) -> (&mut Connection, &Path) {
        (&mut self.db, &self.path)
    }
}

fn insert_series(db: &Connection, key: &SeriesKey) -> rusqlite::Result<u64> {
    db.prepare_cached(
        "INSERT INTO series (interface, address, alias, owner) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET id = id RETURNING id",
    )?
    .query_row(
        params![key.interface, key.address, key.alias, key.owner],
        |r| r.get::<_, i64>(0),
    )
    .map(|id| id as u64)
}

/// The error a user can act on: locked, corrupt, or what failed.
pub(crate) fn classify(path: &Path, what: &'static str, e: rusqlite::Error) -> StoreError {
    let path = path.to_owned();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked { path },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            StoreError::Corrupt { path, source: e }
        }
        _ => StoreError::Sql {
            what,
            path,
            source: e,
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use common::Counters;

    use super::*;

    pub(crate) fn key(address: &str, alias: &str) -> SeriesKey {
        SeriesKey {
            interface: "eth0".into(),
            address: address.into(),
            alias: alias.into(),
            owner: "web".into(),
        }
    }

    fn baseline(at_ms: i64) -> BaselineRecord {
        BaselineRecord {
            epoch: "boot/1".into(),
            at_ms,
            counts: vec![(
                (2, common::Direction::Rx, "192.0.2.1".parse().unwrap()),
                Counters::new(5, 500),
            )],
        }
    }

    #[test]
    fn writes_survive_reopening() {
        let dir = tempdir("reopen");
        let t = Traffic {
            rx: Counters::new(5, 500),
            tx: Counters::default(),
        };
        {
            let mut store = Store::open(&dir).unwrap();
            store
                .write(
                    Some((0, 300_000, 300_000)),
                    &[(key("192.0.2.1", "a"), t)],
                    &baseline(300_000),
                )
                .unwrap();
        }
        let mut store = Store::open(&dir).unwrap();
        store
            .write(
                Some((300_000, 600_000, 300_000)),
                &[(key("192.0.2.1", "a"), t), (key("192.0.2.2", "b"), t)],
                &baseline(600_000),
            )
            .unwrap();
        let read = Store::open_read(&dir).unwrap();
        assert_eq!(read.series().unwrap().len(), 2);
        assert_eq!(read.baseline().unwrap(), Some(baseline(600_000)));
        let mut got = Vec::new();
        read.intervals(0, 600_000, |i| got.push((i.start_ms, i.counts.len())))
            .unwrap();
        assert_eq!(got, [(0, 1), (300_000, 2)]);
        // An interval belongs to the period it ends in.
        let mut later = Vec::new();
        read.intervals(300_000, 900_000, |i| later.push(i.start_ms))
            .unwrap();
        assert_eq!(later, [300_000]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = tempdir("bad");
        assert!(matches!(
            Store::open_read(&dir),
            Err(StoreError::Missing { .. })
        ));
        // Created, its tables not yet: the daemon's first sample midway.
        Connection::open(dir.join(FILE)).unwrap();
        assert!(matches!(
            Store::open_read(&dir),
            Err(StoreError::Missing { .. })
        ));
        std::fs::write(dir.join(FILE), vec![0x55; 8192]).unwrap();
        assert!(matches!(Store::open(&dir), Err(StoreError::Corrupt { .. })));
        assert!(matches!(
            Store::open_read(&dir),
            Err(StoreError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    pub(crate) fn tempdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("aliasstat-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
