//! Reading the counters: the pinned maps, summed over CPUs.
//!
//! [`CounterSource`] is the seam between the kernel and everything that
//! presents counts, so that presentation is unit-tested without BPF.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::maps::{Map, MapData, MapError, PerCpuHashMap, PerCpuValues};
use common::{
    AddrKey, Counters, Direction, OtherKey, OtherKind,
    names::{ADDRESSES, OTHER},
};

use crate::pins;

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error(
        "no aliasstat maps are pinned under `{}`: is `aliasstat run` running (or has it run) with this --bpffs?",
        path.display()
    )]
    NotPinned { path: PathBuf },
    #[error("failed to open the pinned map `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error("failed to list `{}`", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`{}` holds maps of layout v{found}, made by a newer aliasstat; use that version to read them",
        path.display()
    )]
    NewerLayout { path: PathBuf, found: u32 },
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

/// The kernel's maps, opened from their pins: the current layout's, plus
/// those of older layouts whose counts an upgrade carried over.
pub struct PinnedMaps {
    layouts: Vec<LayoutMaps>,
}

struct LayoutMaps {
    addresses: PerCpuHashMap<MapData, AddrKey, Counters>,
    other: PerCpuHashMap<MapData, OtherKey, Counters>,
}

impl PinnedMaps {
    pub fn open(bpffs: &Path) -> Result<Self, CountersError> {
        let found = pins::layouts(bpffs).map_err(|source| CountersError::Dir {
            path: bpffs.to_owned(),
            source,
        })?;
        if let Some(&newer) = found.iter().find(|v| !pins::READABLE_LAYOUTS.contains(v)) {
            return Err(CountersError::NewerLayout {
                path: bpffs.to_owned(),
                found: newer,
            });
        }
        if found.is_empty() {
            return Err(CountersError::NotPinned {
                path: bpffs.to_owned(),
            });
        }
        let layouts = found
            .iter()
            .map(|&v| {
                let dir = pins::maps_dir(bpffs, v);
                Ok(LayoutMaps {
                    addresses: open_map(&dir.join(ADDRESSES))?,
                    other: open_map(&dir.join(OTHER))?,
                })
            })
            .collect::<Result<_, CountersError>>()?;
        Ok(Self { layouts })
    }
}

fn open_map<K: aya::Pod>(
    path: &Path,
) -> Result<PerCpuHashMap<MapData, K, Counters>, CountersError> {
    let data = MapData::from_pin(path).map_err(|source| CountersError::Open {
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
        // Keys repeat across layouts after an upgrade: sum them.
        let mut addresses: BTreeMap<(u32, Direction, IpAddr), Counters> = BTreeMap::new();
        let mut other: BTreeMap<(u32, Direction, OtherKind), Counters> = BTreeMap::new();
        for layout in &self.layouts {
            for entry in layout.addresses.iter() {
                let (key, values) = entry.map_err(|source| CountersError::Read {
                    name: ADDRESSES,
                    source,
                })?;
                // Keys the program never writes are skipped, not shown as
                // garbage.
                if let (Some(direction), Some(address)) = (key.dir(), key.ip()) {
                    *addresses
                        .entry((key.ifindex, direction, address))
                        .or_default() += sum(&values);
                }
            }
            for entry in layout.other.iter() {
                let (key, values) = entry.map_err(|source| CountersError::Read {
                    name: OTHER,
                    source,
                })?;
                if let (Some(direction), Some(kind)) = (key.dir(), key.other_kind()) {
                    *other.entry((key.ifindex, direction, kind)).or_default() += sum(&values);
                }
            }
        }
        Ok(Snapshot {
            addresses: addresses
                .into_iter()
                .map(|((ifindex, direction, address), counters)| AddressCount {
                    ifindex,
                    direction,
                    address,
                    counters,
                })
                .collect(),
            other: other
                .into_iter()
                .map(|((ifindex, direction, kind), counters)| OtherCount {
                    ifindex,
                    direction,
                    kind,
                    counters,
                })
                .collect(),
        })
    }
}

/// The per-CPU slots of one entry, added up.
pub fn sum(values: &PerCpuValues<Counters>) -> Counters {
    values.iter().copied().sum()
}
