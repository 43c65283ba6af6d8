//! The kernel's peer table and its not-recorded counters, opened from their
//! pins: read whole (in batches where the kernel has them), and one entry
//! taken out atomically when the daemon moves it into its record.

use std::{
    os::fd::AsFd as _,
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
};

use aya::maps::{HashMap, IterableMap as _, Map, MapData, MapError};
use common::{
    Counters,
    names::{PEERS, PEERS_MISSED},
    peer::{PeerCounts, PeerKey, PeerMissKey},
};
use log::info;

use super::PeersError;
use crate::bpf::{
    counters::{MapReadError, batch_entries},
    pins,
    sys::{self, SysError},
};

pub struct KernelPeers {
    peers: HashMap<MapData, PeerKey, PeerCounts>,
    missed: HashMap<MapData, PeerMissKey, Counters>,
    capacity: u32,
    missed_capacity: u32,
    /// Cleared for good once the kernel says it has no batch operations.
    batch_works: AtomicBool,
}

impl KernelPeers {
    /// The current layout's peer maps under `bpffs`.
    pub fn open(bpffs: &Path) -> Result<Self, PeersError> {
        let dir = pins::maps_dir(bpffs, pins::LAYOUT_VERSION);
        let peers = open(&dir.join(PEERS))?;
        let missed = open(&dir.join(PEERS_MISSED))?;
        Ok(Self {
            capacity: capacity(peers.map(), PEERS)?,
            missed_capacity: capacity(missed.map(), PEERS_MISSED)?,
            peers,
            missed,
            batch_works: AtomicBool::new(true),
        })
    }

    /// The table's capacity, as created (`--peer-capacity`).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The not-recorded map's capacity, as created.
    pub fn missed_capacity(&self) -> u32 {
        self.missed_capacity
    }

    /// Every pair in the table.
    pub fn peers(&self) -> Result<Vec<(PeerKey, PeerCounts)>, PeersError> {
        self.read(&self.peers, PEERS)
    }

    /// Every local address with packets whose pair found the table full.
    pub fn missed(&self) -> Result<Vec<(PeerMissKey, Counters)>, PeersError> {
        self.read(&self.missed, PEERS_MISSED)
    }

    /// Takes the pair at `key` out of the table, with its counts, in one
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`. `None` when it was not there.
    pub fn take(&self, key: &PeerKey) -> Result<Option<PeerCounts>, PeersError> {
        let mut value = PeerCounts::default();
        let found = sys::lookup_and_delete(
            self.peers.map().fd().as_fd(),
            size_of::<PeerKey>(),
            size_of::<PeerCounts>(),
            bytemuck::bytes_of(key),
            bytemuck::bytes_of_mut(&mut value),
        )
        .map_err(|source| PeersError::Take { source })?;
        Ok(found.then_some(value))
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
