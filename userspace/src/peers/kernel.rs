//! The kernel's peer tables (one per family) and their not-recorded
//! counters, opened from their pins: read whole (in batches where the
//! kernel has them), and one entry taken out atomically when the daemon
//! moves it into its record. Both tables' pairs are listed under one
//! [`PeerKey`], whatever table holds them.

use std::{
    os::fd::AsFd as _,
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
};

use aya::maps::{HashMap, IterableMap as _, Map, MapData, MapError};
use common::{
    Counters,
    names::{PEERS, PEERS_MISSED, PEERS_V4},
    peer::{Peer4Key, PeerCounts, PeerKey, PeerMissKey},
};
use log::info;

use super::PeersError;
use crate::bpf::{
    counters::{MapReadError, batch_entries},
    pins,
    sys::{self, SysError},
};

pub struct KernelPeers {
    v4: HashMap<MapData, Peer4Key, PeerCounts>,
    /// The IPv6 pairs, and on a host upgraded in place the IPv4 pairs an
    /// older daemon's programs wrote before `PEERS_V4` existed.
    peers: HashMap<MapData, PeerKey, PeerCounts>,
    missed: HashMap<MapData, PeerMissKey, Counters>,
    capacity: Capacity,
    missed_capacity: u32,
    /// Cleared for good once the kernel says it has no batch operations.
    batch_works: AtomicBool,
}

impl KernelPeers {
    /// The current layout's peer maps under `bpffs`.
    pub fn open(bpffs: &Path) -> Result<Self, PeersError> {
        let dir = pins::maps_dir(bpffs, pins::LAYOUT_VERSION);
        let v4 = open(&dir.join(PEERS_V4))?;
        let peers = open(&dir.join(PEERS))?;
        let missed = open(&dir.join(PEERS_MISSED))?;
        Ok(Self {
            capacity: Capacity {
                v4: capacity(v4.map(), PEERS_V4)?,
                v6: capacity(peers.map(), PEERS)?,
            },
            missed_capacity: capacity(missed.map(), PEERS_MISSED)?,
            v4,
            peers,
            missed,
            batch_works: AtomicBool::new(true),
        })
    }

    /// Each table's capacity, as created (`--peer-capacity`).
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// The not-recorded map's capacity, as created.
    pub fn missed_capacity(&self) -> u32 {
        self.missed_capacity
    }

    /// Every pair in both tables, the IPv4 table's first.
    pub fn peers(&self) -> Result<Pairs, PeersError> {
        let mut all: Vec<(PeerKey, PeerCounts)> = (self.read(&self.v4, PEERS_V4)?.into_iter())
            .map(|(k, c)| (k.widen(), c))
            .collect();
        let in_v4 = all.len();
        all.extend(self.read(&self.peers, PEERS)?);
        Ok(Pairs { all, in_v4 })
    }

    /// Every local address with packets whose pair found the table full.
    pub fn missed(&self) -> Result<Vec<(PeerMissKey, Counters)>, PeersError> {
        self.read(&self.missed, PEERS_MISSED)
    }

    /// Takes the pair at `key` out of its table, with its counts, in one
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`. `None` when it was not there.
    ///
    /// An IPv4 pair is looked for in `PEERS` first: an entry an older
    /// daemon left there no longer changes, so when a sweep finds it idle
    /// it is that entry, not the live one of the same pair in `PEERS_V4`,
    /// that the sweep means.
    pub fn take(&self, key: &PeerKey) -> Result<Option<PeerCounts>, PeersError> {
        let found = take(self.peers.map(), key)?;
        match key.narrow() {
            Some(v4) if found.is_none() => take(self.v4.map(), &v4),
            _ => Ok(found),
        }
    }

    fn read<K: aya::Pod + bytemuck::Pod, V: aya::Pod + bytemuck::Pod>(
        &self,
        map: &HashMap<MapData, K, V>,
        name: &'static str,
    ) -> Result<Vec<(K, V)>, PeersError> {
        let mut out = Vec::new();
        if self.batch_works.load(Ordering::Relaxed) {
            let batched = batch_entries(map.map(), None, &mut |k, v: &[V]| out.push((k, v[0])));
            match batched {
                Ok(()) => return Ok(out),
                Err(e @ SysError::Unsupported { .. }) => {
                    info!("reading the peer maps one key at a time: {e}");
                    self.batch_works.store(false, Ordering::Relaxed);
                    out.clear();
                }
                Err(source) => return Err(MapReadError::Batches { name, source }.into()),
            }
        }
        for entry in map.iter() {
            out.push(entry.map_err(|source| MapReadError::Entries { name, source })?);
        }
        Ok(out)
    }
}

/// Both tables' pairs, as [`KernelPeers::peers`] read them.
pub struct Pairs {
    pub all: Vec<(PeerKey, PeerCounts)>,
    /// How many of `all` (the first ones) `PEERS_V4` holds.
    pub in_v4: usize,
}

/// The capacity of each family's table.
#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    pub v4: u32,
    /// `PEERS`'.
    pub v6: u32,
}

fn take<K: bytemuck::Pod>(map: &MapData, key: &K) -> Result<Option<PeerCounts>, PeersError> {
    let mut value = PeerCounts::default();
    let found = sys::lookup_and_delete(
        map.fd().as_fd(),
        size_of::<K>(),
        size_of::<PeerCounts>(),
        bytemuck::bytes_of(key),
        bytemuck::bytes_of_mut(&mut value),
    )
    .map_err(|source| PeersError::Take { source })?;
    Ok(found.then_some(value))
}

fn open<K: aya::Pod, V: aya::Pod>(path: &Path) -> Result<HashMap<MapData, K, V>, PeersError> {
    let err = |source: MapError| PeersError::Open {
        path: path.to_owned(),
        source,
    };
    let data = MapData::from_pin(path).map_err(err)?;
    HashMap::try_from(Map::HashMap(data)).map_err(err)
}

fn capacity(map: &MapData, name: &'static str) -> Result<u32, PeersError> {
    map.info()
        .map(|i| i.max_entries())
        .map_err(|source| MapReadError::Entries { name, source }.into())
}
