//! The daemon's own record of peers: those whose kernel entry was freed
//! after `--peer-idle`, kept for `--peer-retention` after their last
//! packet. A JSON file under `--state-dir`, rewritten atomically (a
//! temporary file, fsync, rename) after every change, so that a crash
//! leaves either the old record or the new one.
//!
//! The record is behind this small interface (load, add, expire, save,
//! entries) so that it can move into another store without its callers
//! changing.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};

use super::{PairKey, Totals, time};

/// The file under `--state-dir`.
pub const FILE: &str = "peers.json";
/// The file format; a newer one is refused rather than misread.
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("failed to read the peer record `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the peer record `{}` is not one this aliasstat can read; move it aside to start a new one",
        path.display()
    )]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to write the peer record `{}` (is --state-dir writable?)", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    peers: Vec<Stored>,
}

/// One retained peer as the file holds it; times in Unix milliseconds.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    key: PairKey,
    #[serde(flatten)]
    totals: Totals,
}

pub struct Record {
    path: PathBuf,
    peers: BTreeMap<PairKey, Totals>,
}

impl Record {
    /// The record under `state_dir`; none yet is an empty record.
    pub fn load(state_dir: &Path) -> Result<Self, RecordError> {
        let path = state_dir.join(FILE);
        let peers = match fs::read(&path) {
            Ok(bytes) => {
                let parse = |source| RecordError::Parse {
                    path: path.clone(),
                    source,
                };
                let file: File = serde_json::from_slice(&bytes).map_err(parse)?;
                if file.version != VERSION {
                    return Err(parse(serde::de::Error::custom(format!(
                        "format version {} (this aliasstat writes {VERSION})",
                        file.version
                    ))));
                }
                file.peers.into_iter().map(|s| (s.key, s.totals)).collect()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(RecordError::Read { path, source }),
        };
        Ok(Self { path, peers })
    }

    /// [`Record::load`], but a record that cannot be read does not stop the
    /// daemon: it starts an empty one (a corrupt file is first moved aside
    /// to `peers.json.unreadable`, so that saving does not overwrite it),
    /// and the peers are listed from the kernel's table until the state
    /// directory works again.
    pub fn load_or_empty(state_dir: &Path) -> Self {
        match Self::load(state_dir) {
            Ok(record) => record,
            Err(e) => {
                let path = state_dir.join(FILE);
                let kept = path.with_extension("json.unreadable");
                let aside =
                    matches!(e, RecordError::Parse { .. }) && fs::rename(&path, &kept).is_ok();
                let moved = if aside {
                    format!("; moved it to `{}`", kept.display())
                } else {
                    String::new()
                };
                log::error!(
                    "{}{moved}; starting an empty peer record, which is saved once the state directory is writable",
                    crate::top::chain(&e)
                );
                Self {
                    path,
                    peers: BTreeMap::new(),
                }
            }
        }
    }

    /// Adds the totals of a freed kernel entry to the peer's.
    pub fn add(&mut self, key: PairKey, totals: Totals) {
        self.peers
            .entry(key)
            .or_insert(Totals::EMPTY)
            .merge(&totals);
    }

    /// Drops the peers last seen before `before`; returns how many.
    pub fn expire(&mut self, before: SystemTime) -> usize {
        let cut = time::unix_ms(before);
        let was = self.peers.len();
        self.peers.retain(|_, t| t.last_seen_ms >= cut);
        was - self.peers.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&PairKey, &Totals)> {
        self.peers.iter()
    }

    /// Writes the record: a temporary file beside it, synced, renamed
    /// over it, and the directory synced.
    pub fn save(&self) -> Result<(), RecordError> {
        let write_err = |source| RecordError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(write_err)?;
        let file = File {
            version: VERSION,
            peers: self
                .peers
                .iter()
                .map(|(key, totals)| Stored {
                    key: key.clone(),
                    totals: *totals,
                })
                .collect(),
        };
        let text = serde_json::to_vec(&file).map_err(|e| write_err(io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut out = fs::File::create(&tmp).map_err(write_err)?;
        out.write_all(&text)
            .and_then(|()| out.sync_all())
            .map_err(write_err)?;
        fs::rename(&tmp, &self.path).map_err(write_err)?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::Remote;

    fn key(peer: &str) -> PairKey {
        PairKey {
            interface: "eth0".into(),
            address: "10.0.0.5".parse().unwrap(),
            peer: Remote::full(peer.parse().unwrap()),
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

    #[test]
    fn adds_sum_expire_and_survive_a_reload() {
        let dir = std::env::temp_dir().join(format!("aliasstat-record-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut record = Record::load(&dir).unwrap();
        record.add(key("203.0.113.7"), totals(3, 1_000, 5_000));
        record.add(key("203.0.113.7"), totals(2, 8_000, 9_000));
        record.add(key("203.0.113.8"), totals(1, 2_000, 2_000));
        record.save().unwrap();
        let mut again = Record::load(&dir).unwrap();
        let got: Vec<_> = again.entries().map(|(k, t)| (k.clone(), *t)).collect();
        let mut both = totals(5, 1_000, 9_000);
        both.tx_packets = 2;
        both.tx_bytes = 100;
        assert_eq!(
            got,
            [
                (key("203.0.113.7"), both),
                (key("203.0.113.8"), totals(1, 2_000, 2_000))
            ]
        );
        assert_eq!(again.expire(time::from_unix_ms(3_000)), 1);
        assert_eq!(again.entries().count(), 1);
        fs::write(dir.join(FILE), br#"{"version":9,"peers":[]}"#).unwrap();
        assert!(matches!(Record::load(&dir), Err(RecordError::Parse { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
