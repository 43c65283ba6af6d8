//! Who each local address talks with, and when it last did: the kernel's
//! peer table (`kernel`), the daemon's record of peers whose kernel entry
//! it freed (`record`), and the view both make together (`view`), which
//! `GET /api/v1/peers`, `aliasstat peers`, the metrics and `top` show.
//!
//! The kernel table holds the working set. Every sweep moves the pairs idle
//! for `--peer-idle` out of it, exactly (read and deleted in one call), into
//! the record, which keeps each peer for `--peer-retention` after its last
//! packet. A peer's totals are its record's plus its kernel entry's, so
//! nothing is lost when the entry is freed and the pair comes back.
//!
//! Pairs whose local address is foreign (neither on this host nor
//! documented: broadcast, multicast, scans) are freed without a record, so
//! that a scan cannot grow the record; their address counts are kept
//! as [`crate::foreign`] keeps them.

mod kernel;
pub mod record;
pub mod time;
pub mod view;

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use aya::maps::MapError;
use common::peer::{PeerCounts, PeerKey};
use log::{error, info, warn};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use self::{
    kernel::{Capacity, KernelPeers},
    record::Record,
    time::Clock,
};
use crate::{
    bpf::{counters::MapReadError, sys::SysError},
    history::store,
    inventory::{self, Config, HostTable, State},
};

#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    #[error(
        "failed to open the pinned peer map `{}` (is `aliasstat run` running without --peers off?)",
        path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error(transparent)]
    Read(#[from] MapReadError),
    #[error("failed to move an idle peer out of the kernel's table")]
    Take {
        #[source]
        source: SysError,
    },
    #[error(transparent)]
    Record(#[from] record::RecordError),
}

/// A remote address, or the prefix it was grouped into
/// (`--peer-prefix-v4`, `--peer-prefix-v6`). Written `203.0.113.7` for a
/// single address and `2001:db8:1:2::/64` for a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Remote {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Remote {
    pub fn full(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, prefix }
    }

    fn is_single(&self) -> bool {
        *self == Self::full(self.addr)
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl FromStr for Remote {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an address or prefix");
        match s.split_once('/') {
            None => s.parse().map(Self::full).map_err(|_| bad()),
            Some((addr, prefix)) => Ok(Self {
                addr: addr.parse().map_err(|_| bad())?,
                prefix: prefix.parse().map_err(|_| bad())?,
            }),
        }
    }
}

impl Serialize for Remote {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Remote {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One (interface, local address, peer): the unit the record keeps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PairKey {
    pub interface: String,
    pub address: IpAddr,
    pub peer: Remote,
}

/// A pair's counts and times (Unix milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

impl Totals {
    /// Nothing yet: the identity of [`Totals::merge`].
    pub const EMPTY: Self = Self {
        rx_packets: 0,
        rx_bytes: 0,
        tx_packets: 0,
        tx_bytes: 0,
        first_seen_ms: u64::MAX,
        last_seen_ms: 0,
    };

    /// A kernel entry's counts, its times read with `clock`.
    pub fn of(counts: &PeerCounts, clock: &Clock) -> Self {
        Self {
            rx_packets: counts.rx_packets,
            rx_bytes: counts.rx_bytes,
            tx_packets: counts.tx_packets,
            tx_bytes: counts.tx_bytes,
            first_seen_ms: time::unix_ms(clock.wall_of(counts.first_seen_ns)),
            last_seen_ms: time::unix_ms(clock.wall_of(counts.last_seen_ns)),
        }
    }

    /// Both together: counts summed, the earlier first and the later last.
    pub fn merge(&mut self, other: &Self) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.first_seen_ms = self.first_seen_ms.min(other.first_seen_ms);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
    }
}

/// The pair a kernel key stands for, named as the host names its
/// interface; `None` for a family byte the program never writes.
pub fn pair_of(key: &PeerKey, host: &HostTable) -> Option<PairKey> {
    let (address, peer) = ends_of(key)?;
    Some(PairKey {
        interface: host.link_name(key.ifindex),
        address,
        peer,
    })
}

/// The local address and the peer of a kernel key, without naming its
/// interface; `None` as for [`pair_of`].
pub fn ends_of(key: &PeerKey) -> Option<(IpAddr, Remote)> {
    let peer = Remote {
        addr: key.remote_ip()?,
        prefix: key.prefix,
    };
    Some((key.local_ip()?, peer))
}

/// `--peer-idle`, `--peer-retention` and `--state-dir`.
#[derive(Clone, Debug)]
pub struct Retention {
    pub idle: Duration,
    pub keep: Duration,
    pub state_dir: PathBuf,
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Idle pairs moved from the kernel into the record.
    pub moved: usize,
    /// Idle pairs of foreign addresses, freed without a record.
    pub dropped: usize,
    /// Record entries past retention, dropped.
    pub expired: usize,
}

/// The kernel table and the record, behind one lock so that a sweep never
/// falls between a read of the two.
pub struct Peers {
    kernel: KernelPeers,
    record: Mutex<Record>,
    retention: Retention,
}

impl Peers {
    pub fn open(bpffs: &Path, retention: Retention) -> Result<Self, PeersError> {
        Ok(Self {
            kernel: KernelPeers::open(bpffs)?,
            record: Mutex::new(Record::load_or_empty(&retention.state_dir)),
            retention,
        })
    }

    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    /// The kernel's peer table and not-recorded map.
    pub fn kernel(&self) -> &KernelPeers {
        &self.kernel
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the pairs idle for `--peer-idle` into the record (or frees
    /// them, for a local address `is_foreign`), drops what is past
    /// retention, and saves the record if it changed.
    pub fn sweep(
        &self,
        host: &HostTable,
        is_foreign: &dyn Fn(IpAddr) -> bool,
        clock: &Clock,
    ) -> Result<Swept, PeersError> {
        let mut record = self.record();
        let idle_ns = u64::try_from(self.retention.idle.as_nanos()).unwrap_or(u64::MAX);
        let mut swept = Swept::default();
        for (key, counts) in self.kernel.peers()?.all {
            if clock.monotonic_ns.saturating_sub(counts.last_seen_ns) < idle_ns {
                continue;
            }
            let Some(counts) = self.kernel.take(&key)? else {
                continue;
            };
            match pair_of(&key, host) {
                Some(pair) if !is_foreign(pair.address) => {
                    record.add(pair, Totals::of(&counts, clock));
                    swept.moved += 1;
                }
                _ => swept.dropped += 1,
            }
        }
        swept.expired = record.expire(clock.wall - self.retention.keep);
        record.save()?;
        Ok(swept)
    }

    /// How often to sweep: as the foreign janitor does, a tenth of the
    /// idle time within [1 s, 60 s].
    pub fn every(&self) -> Duration {
        crate::foreign::janitor::sweep_interval(self.retention.idle)
    }

    /// One sweep now, judged against the inventory, with what it did logged.
    /// Returns whether the record could not be written to the database
    /// (it is then kept in memory, and written at a later sweep).
    pub fn sweep_now(&self, host: &HostTable, config: &Config) -> bool {
        let is_foreign = |a| inventory::state(host, config, a) == State::Foreign;
        match self.sweep(host, &is_foreign, &Clock::now()) {
            Ok(Swept {
                moved: 0,
                dropped: 0,
                expired: 0,
            }) => false,
            Ok(s) => {
                info!(
                    "peers: {} idle for {} s moved into the record in {}, {} of foreign addresses freed, {} past retention dropped",
                    s.moved,
                    self.retention.idle.as_secs(),
                    self.retention.state_dir.join(store::FILE).display(),
                    s.dropped,
                    s.expired
                );
                false
            }
            Err(PeersError::Record(e)) => {
                error!(
                    "peers: {}; the record is kept in memory and written at a later sweep; counting goes on",
                    crate::top::chain(&e)
                );
                true
            }
            Err(e) => {
                warn!("peer sweep skipped: {e}");
                false
            }
        }
    }

    /// Every address with its peers, as `GET /api/v1/peers` serves it.
    pub fn list(
        &self,
        host: &HostTable,
        config: &Config,
    ) -> Result<Vec<view::AddressPeers>, PeersError> {
        self.with_all(|t| view::build(&t, host, config, &Clock::now()))
    }

    /// Distinct peers per local address, counted from the kernel's pairs
    /// and the record without building [`Peers::list`] (the live page's
    /// column, every two seconds).
    pub fn distinct(&self) -> Result<HashMap<IpAddr, usize>, PeersError> {
        self.with_all(|t| view::distinct(&t))
    }

    /// Runs `f` on the kernel's pairs, its not-recorded counters and the
    /// record, read together.
    pub fn with_all<R>(&self, f: impl FnOnce(view::Tables<'_>) -> R) -> Result<R, PeersError> {
        let record = self.record();
        let peers = self.kernel.peers()?;
        let missed = self.kernel.missed()?;
        Ok(f(view::Tables {
            kernel: &peers.all,
            kernel_v4: peers.in_v4,
            missed: &missed,
            record: &record,
        }))
    }
}
