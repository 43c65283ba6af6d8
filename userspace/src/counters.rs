//! Reading the counters: the pinned maps, summed over CPUs.
//!
//! [`CounterSource`] is the seam between the kernel and everything that
//! presents counts, so that presentation is unit-tested without BPF.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::maps::{Map, MapData, MapError, PerCpuHashMap, PerCpuValues};
use common::{
    AddrKey, Counters, Direction, OtherKey, OtherKind,
    names::{ADDRESSES, OTHER},
};

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error(
        "no pinned map at `{}`: is `aliasstat run` running (or has it run) with this --bpffs?",
        path.display()
    )]
    NotPinned {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error("pinned map `{}` is not the per-CPU hash aliasstat expects", path.display())]
    WrongMap {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error("failed to read map `{name}`")]
    Read {
        name: &'static str,
        #[source]
        source: MapError,
    },
}

/// Packets and bytes seen for one address on one interface, one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressCount {
    pub ifindex: u32,
    pub direction: Direction,
    pub address: IpAddr,
    pub counters: Counters,
}

/// A `non_ip` or `overflow` bucket of one interface and direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherCount {
    pub ifindex: u32,
    pub direction: Direction,
    pub kind: OtherKind,
    pub counters: Counters,
}

/// Every counter at one moment, each summed over CPUs, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub addresses: Vec<AddressCount>,
    pub other: Vec<OtherCount>,
}

impl Snapshot {
    fn sort(&mut self) {
        self.addresses
            .sort_by_key(|a| (a.ifindex, a.direction, a.address));
        self.other.sort_by_key(|o| (o.ifindex, o.direction, o.kind));
    }
}

/// Where counts come from.
pub trait CounterSource {
    fn snapshot(&self) -> Result<Snapshot, CountersError>;
}

/// Fixed counts, for tests and for presenting a snapshot taken earlier.
impl CounterSource for Snapshot {
    fn snapshot(&self) -> Result<Snapshot, CountersError> {
        Ok(self.clone())
    }
}

/// The kernel's maps, opened from their pins.
pub struct PinnedMaps {
    addresses: PerCpuHashMap<MapData, AddrKey, Counters>,
    other: PerCpuHashMap<MapData, OtherKey, Counters>,
}

impl PinnedMaps {
    pub fn open(bpffs: &Path) -> Result<Self, CountersError> {
        Ok(Self {
            addresses: open_map(&bpffs.join(ADDRESSES))?,
            other: open_map(&bpffs.join(OTHER))?,
        })
    }
}

fn open_map<K: aya::Pod>(
    path: &Path,
) -> Result<PerCpuHashMap<MapData, K, Counters>, CountersError> {
    let data = MapData::from_pin(path).map_err(|source| CountersError::NotPinned {
        path: path.to_owned(),
        source,
    })?;
    PerCpuHashMap::try_from(Map::PerCpuHashMap(data)).map_err(|source| CountersError::WrongMap {
        path: path.to_owned(),
        source,
    })
}

impl CounterSource for PinnedMaps {
    fn snapshot(&self) -> Result<Snapshot, CountersError> {
        let mut snap = Snapshot::default();
        for entry in self.addresses.iter() {
            let (key, values) = entry.map_err(|source| CountersError::Read {
                name: ADDRESSES,
                source,
            })?;
            // Keys the program never writes (a layout from another version)
            // are skipped rather than shown as garbage.
            if let (Some(direction), Some(address)) = (key.dir(), key.ip()) {
                snap.addresses.push(AddressCount {
                    ifindex: key.ifindex,
                    direction,
                    address,
                    counters: sum(&values),
                });
            }
        }
        for entry in self.other.iter() {
            let (key, values) = entry.map_err(|source| CountersError::Read {
                name: OTHER,
                source,
            })?;
            if let (Some(direction), Some(kind)) = (key.dir(), key.other_kind()) {
                snap.other.push(OtherCount {
                    ifindex: key.ifindex,
                    direction,
                    kind,
                    counters: sum(&values),
                });
            }
        }
        snap.sort();
        Ok(snap)
    }
}

/// The per-CPU slots of one entry, added up.
pub fn sum(values: &PerCpuValues<Counters>) -> Counters {
    values.iter().copied().sum()
}
