//! Reading the counters: the pinned maps, summed over CPUs.
//!
//! [`CounterSource`] is the seam between the kernel and everything that
//! presents counts, so that presentation is unit-tested without BPF.
//!
//! Maps are read in batches of [`BATCH_ENTRIES`] (`BPF_MAP_LOOKUP_BATCH`,
//! see [`crate::bpf::sys`]): one system call per batch instead of two per entry,
//! which is what keeps a scrape of a large map cheap. Kernels without batch
//! operations get the per-key iteration instead.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    os::fd::AsFd as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use aya::maps::{IterableMap as _, Map, MapData, MapError, PerCpuHashMap, PerCpuValues};
use common::{
    Addr4Key, Addr6Key, AddrKey, Counters, Direction, OtherKey, OtherKind,
    names::{ADDRESSES, ADDRESSES_V4, ADDRESSES_V6, OTHER},
};
use log::info;

use crate::bpf::{
    CpusError, cpus,
    pins::{self, LayoutError},
    sys::{self, Batch, BatchCursor, SysError},
};

/// Entries asked for per `BPF_MAP_LOOKUP_BATCH` call. Large enough that a
/// million-entry map takes a few hundred calls, small enough that the
/// buffers (about 100 KiB of keys, 32 B of values per CPU per entry) stay
/// in cache.
pub const BATCH_ENTRIES: usize = 4096;

// A per-CPU batch buffer pads each CPU's value to 8 bytes; `Counters` has
// only `u64` fields, so its slots are exactly `Counters` and the buffer is
// read as a `[Counters]`.
const _: () = assert!(size_of::<Counters>().is_multiple_of(8));

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
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("pinned map `{}` is not the per-CPU hash aliasstat expects", path.display())]
    WrongMap {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    #[error(transparent)]
    Read(#[from] MapReadError),
    #[error(transparent)]
    Cpus(#[from] CpusError),
}

/// Reading a pinned map failed, key by key or in batches: the counters'
/// maps and the peer maps share it.
#[derive(Debug, thiserror::Error)]
pub enum MapReadError {
    #[error("failed to read map `{name}`")]
    Entries {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error("failed to read map `{name}` in batches")]
    Batches {
        name: &'static str,
        #[source]
        source: SysError,
    },
}

/// How [`PinnedMaps`] reads a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMethod {
    /// `BPF_MAP_LOOKUP_BATCH`, [`BATCH_ENTRIES`] entries per call.
    Batched,
    /// aya's iterator: `GET_NEXT_KEY` and `LOOKUP_ELEM` for every entry.
    PerKey,
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
    /// Per-CPU slots in each value: the kernel's possible CPUs.
    cpus: usize,
    /// Cleared for good once the kernel says it has no batch operations.
    batch_works: AtomicBool,
}

struct LayoutMaps {
    addresses: AddressMaps,
    other: PerCpuHashMap<MapData, OtherKey, Counters>,
}

/// The address maps of one layout (see [`pins`] for which has which).
pub(crate) enum AddressMaps {
    /// Layout v1: both families in one map of 24-byte keys.
    V1(PerCpuHashMap<MapData, AddrKey, Counters>),
    /// Layout v2 on: a map per family.
    PerFamily {
        v4: PerCpuHashMap<MapData, Addr4Key, Counters>,
        v6: PerCpuHashMap<MapData, Addr6Key, Counters>,
    },
}

impl AddressMaps {
    /// The address maps pinned in layout `layout`'s directory.
    pub(crate) fn open(bpffs: &Path, layout: u32) -> Result<Self, CountersError> {
        let dir = pins::maps_dir(bpffs, layout);
        Ok(if layout == 1 {
            Self::V1(open_map(&dir.join(ADDRESSES))?)
        } else {
            Self::PerFamily {
                v4: open_map(&dir.join(ADDRESSES_V4))?,
                v6: open_map(&dir.join(ADDRESSES_V6))?,
            }
        })
    }

    /// Whether the entry of `(ifindex, direction, address)` is there.
    pub(crate) fn contains(&self, ifindex: u32, direction: Direction, address: IpAddr) -> bool {
        match (self, address) {
            (Self::V1(m), _) => m.get(&AddrKey::new(ifindex, direction, address), 0),
            (Self::PerFamily { v4, .. }, IpAddr::V4(a)) => {
                v4.get(&Addr4Key::new(ifindex, direction, a.octets()), 0)
            }
            (Self::PerFamily { v6, .. }, IpAddr::V6(a)) => {
                v6.get(&Addr6Key::new(ifindex, direction, a.octets()), 0)
            }
        }
        .is_ok()
    }

    /// [`take`] on the entry of `(ifindex, direction, address)`.
    pub(crate) fn take(
        &self,
        ifindex: u32,
        direction: Direction,
        address: IpAddr,
        cpus: usize,
    ) -> Result<Option<Counters>, SysError> {
        match (self, address) {
            (Self::V1(m), _) => take(m, &AddrKey::new(ifindex, direction, address), cpus),
            (Self::PerFamily { v4, .. }, IpAddr::V4(a)) => {
                take(v4, &Addr4Key::new(ifindex, direction, a.octets()), cpus)
            }
            (Self::PerFamily { v6, .. }, IpAddr::V6(a)) => {
                take(v6, &Addr6Key::new(ifindex, direction, a.octets()), cpus)
            }
        }
    }
}

/// A map key that names one address counter: `(ifindex, direction,
/// address)`, or `None` for a key the programs never write.
trait AddressKey {
    fn parts(&self) -> Option<(u32, Direction, IpAddr)>;
}

impl AddressKey for AddrKey {
    fn parts(&self) -> Option<(u32, Direction, IpAddr)> {
        Some((self.ifindex, self.dir()?, self.ip()?))
    }
}

impl AddressKey for Addr4Key {
    fn parts(&self) -> Option<(u32, Direction, IpAddr)> {
        Some((self.ifindex(), self.dir(), self.ip().into()))
    }
}

impl AddressKey for Addr6Key {
    fn parts(&self) -> Option<(u32, Direction, IpAddr)> {
        Some((self.ifindex(), self.dir(), self.ip().into()))
    }
}

impl PinnedMaps {
    pub fn open(bpffs: &Path) -> Result<Self, CountersError> {
        let found = pins::layouts(bpffs)?;
        if found.is_empty() {
            return Err(CountersError::NotPinned {
                path: bpffs.to_owned(),
            });
        }
        let layouts = found
            .all()
            .map(|v| {
                Ok(LayoutMaps {
                    addresses: AddressMaps::open(bpffs, v)?,
                    other: open_map(&pins::maps_dir(bpffs, v).join(OTHER))?,
                })
            })
            .collect::<Result<_, CountersError>>()?;
        Ok(Self {
            layouts,
            cpus: cpus()?,
            batch_works: AtomicBool::new(true),
        })
    }

    /// A snapshot read with `method` only, never falling back: for the
    /// benchmarks and for tests that compare the two.
    pub fn snapshot_by(&self, method: ReadMethod) -> Result<Snapshot, CountersError> {
        // Keys repeat across layouts after an upgrade: sum them.
        let mut addresses: BTreeMap<(u32, Direction, IpAddr), Counters> = BTreeMap::new();
        let mut other: BTreeMap<(u32, Direction, OtherKind), Counters> = BTreeMap::new();
        for layout in &self.layouts {
            // Keys the program never writes are skipped, not shown as
            // garbage.
            let mut add = |parts: Option<_>, counters| {
                if let Some(parts) = parts {
                    *addresses.entry(parts).or_default() += counters;
                }
            };
            match &layout.addresses {
                AddressMaps::V1(map) => {
                    self.read(map, ADDRESSES, method, |k, c| add(k.parts(), c))?;
                }
                AddressMaps::PerFamily { v4, v6 } => {
                    self.read(v4, ADDRESSES_V4, method, |k, c| add(k.parts(), c))?;
                    self.read(v6, ADDRESSES_V6, method, |k, c| add(k.parts(), c))?;
                }
            }
            self.read(&layout.other, OTHER, method, |key, counters| {
                if let (Some(direction), Some(kind)) = (key.dir(), key.other_kind()) {
                    *other.entry((key.ifindex, direction, kind)).or_default() += counters;
                }
            })?;
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

    /// Calls `each` with every entry of `map` and its per-CPU sum.
    fn read<K: aya::Pod + bytemuck::Pod>(
        &self,
        map: &PerCpuHashMap<MapData, K, Counters>,
        name: &'static str,
        method: ReadMethod,
        mut each: impl FnMut(K, Counters),
    ) -> Result<(), CountersError> {
        match method {
            ReadMethod::PerKey => {
                for entry in map.iter() {
                    let (key, values) =
                        entry.map_err(|source| MapReadError::Entries { name, source })?;
                    each(key, sum(&values));
                }
                Ok(())
            }
            ReadMethod::Batched => read_batched(map.map(), self.cpus, &mut each)
                .map_err(|source| MapReadError::Batches { name, source }.into()),
        }
    }
}

/// Reads every entry of a per-CPU hash of `K` to [`Counters`] with
/// `BPF_MAP_LOOKUP_BATCH`.
fn read_batched<K: bytemuck::Pod>(
    map: &MapData,
    cpus: usize,
    each: &mut impl FnMut(K, Counters),
) -> Result<(), SysError> {
    batch_entries(map, Some(cpus), &mut |key, slots: &[Counters]| {
        each(key, slots.iter().copied().sum());
    })
}

/// Reads every entry of a hash of `K` to `V` with `BPF_MAP_LOOKUP_BATCH`,
/// calling `each` with the key and its value: one `V` for a plain map,
/// one per possible CPU (`per_cpu_slots`) for a per-CPU map, whose slots
/// are `V` exactly when `V` is a multiple of 8 bytes.
pub(crate) fn batch_entries<K: bytemuck::Pod, V: bytemuck::Pod>(
    map: &MapData,
    per_cpu_slots: Option<usize>,
    each: &mut impl FnMut(K, &[V]),
) -> Result<(), SysError> {
    let slots = per_cpu_slots.unwrap_or(1);
    let key_size = size_of::<K>();
    let value_size = sys::batch_value_size(size_of::<V>(), per_cpu_slots);
    let mut entries = BATCH_ENTRIES;
    let mut keys = vec![K::zeroed(); entries];
    let mut values = vec![V::zeroed(); entries * slots];
    let mut cursor = BatchCursor::new(key_size);
    loop {
        let batch = sys::lookup_batch(
            map.fd().as_fd(),
            &mut cursor,
            key_size,
            value_size,
            bytemuck::cast_slice_mut(&mut keys),
            bytemuck::cast_slice_mut(&mut values),
        )?;
        let (count, done) = match batch {
            Batch::More { count } => (count, false),
            Batch::Done { count } => (count, true),
            // One hash bucket holds more than `entries` keys: only with a
            // pathological hash, but then grow rather than fail.
            Batch::TooSmall => {
                entries *= 2;
                keys.resize(entries, K::zeroed());
                values.resize(entries * slots, V::zeroed());
                continue;
            }
        };
        for (key, value) in keys.iter().zip(values.chunks_exact(slots)).take(count) {
            each(*key, value);
        }
        if done {
            return Ok(());
        }
    }
}

/// A pinned per-CPU hash of `K` to [`Counters`].
pub(crate) fn open_map<K: aya::Pod>(
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

/// Takes the entry at `key` out of a per-CPU hash of `K` to [`Counters`]:
/// its per-CPU counters, summed, and the entry gone, in one call (see
/// [`sys::lookup_and_delete`]). `None` when the key was not there.
pub(crate) fn take<K: aya::Pod + bytemuck::Pod>(
    map: &PerCpuHashMap<MapData, K, Counters>,
    key: &K,
    cpus: usize,
) -> Result<Option<Counters>, SysError> {
    let mut slots = vec![Counters::default(); cpus];
    let found = sys::lookup_and_delete(
        map.map().fd().as_fd(),
        size_of::<K>(),
        sys::batch_value_size(size_of::<Counters>(), Some(cpus)),
        bytemuck::bytes_of(key),
        bytemuck::cast_slice_mut(&mut slots),
    )?;
    Ok(found.then(|| slots.into_iter().sum()))
}

impl CounterSource for PinnedMaps {
    fn snapshot(&self) -> Result<Snapshot, CountersError> {
        if self.batch_works.load(Ordering::Relaxed) {
            match self.snapshot_by(ReadMethod::Batched) {
                Err(CountersError::Read(MapReadError::Batches {
                    source: e @ SysError::Unsupported { .. },
                    ..
                })) => {
                    info!("reading the maps one key at a time: {e}");
                    self.batch_works.store(false, Ordering::Relaxed);
                }
                read => return read,
            }
        }
        self.snapshot_by(ReadMethod::PerKey)
    }
}

/// The per-CPU slots of one entry, added up.
pub fn sum(values: &PerCpuValues<Counters>) -> Counters {
    values.iter().copied().sum()
}
