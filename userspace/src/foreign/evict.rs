//! Evicting idle foreign addresses from the address map.
//!
//! A scan or a flood to many addresses fills the map with entries nobody
//! will look at again, and a full map sends new addresses, aliases
//! included, to the overflow bucket. So an entry for a foreign address (not
//! on this host, not documented) that has not changed for `--foreign-idle`
//! is removed, and its counts are added to the interface's `evicted`
//! bucket, which `aliasstat_foreign_other_*_total` includes: every exported
//! counter stays monotonic and no count is dropped. Only user space writes
//! that bucket, so its read-modify-write cannot race the programs.
//!
//! The entry is read and deleted in one `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
//! A packet for that address arriving in the microseconds between a
//! program's lookup and its add could still be lost; an address idle for
//! minutes makes that a remote chance, and a packet after the delete simply
//! creates a new entry.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use aya::maps::{MapData, MapError, PerCpuHashMap, PerCpuValues};
use common::{Counters, OtherKey, OtherKind, names::OTHER};

use super::EntryKey;
use crate::bpf::{
    CpusError,
    counters::{AddressCount, AddressMaps, CountersError, open_map},
    pins,
    sys::SysError,
};

/// When each entry last changed, to tell idle entries from busy ones.
#[derive(Default)]
pub struct IdleTracker {
    last: HashMap<EntryKey, (Counters, Instant)>,
}

impl IdleTracker {
    /// Records `counts` as seen at `now` and returns the foreign entries
    /// unchanged for at least `idle`. Entries no longer in `counts` are
    /// forgotten.
    pub fn idle(
        &mut self,
        counts: &[AddressCount],
        now: Instant,
        idle: Duration,
        is_foreign: impl Fn(IpAddr) -> bool,
    ) -> Vec<EntryKey> {
        let mut seen = HashMap::with_capacity(counts.len());
        let mut found = Vec::new();
        for c in counts {
            let key = (c.ifindex, c.direction, c.address);
            let since = match self.last.get(&key) {
                Some(&(before, since)) if before == c.counters => since,
                _ => now,
            };
            if is_foreign(c.address) && now.duration_since(since) >= idle {
                found.push(key);
            }
            seen.insert(key, (c.counters, since));
        }
        self.last = seen;
        found
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvictError {
    #[error("failed to open the maps for eviction")]
    Open(#[from] CountersError),
    #[error(transparent)]
    Cpus(#[from] CpusError),
    #[error("failed to remove an idle entry from an address map")]
    Take(#[source] SysError),
    #[error("failed to add evicted counts to {OTHER}")]
    Fold(#[source] MapError),
}

/// The current layout's maps, opened for eviction.
pub struct Maps {
    addresses: AddressMaps,
    other: PerCpuHashMap<MapData, OtherKey, Counters>,
    /// Older layouts' address maps: a key that also lives there is left
    /// alone, since its series is the sum of both.
    carried: Vec<AddressMaps>,
    cpus: usize,
}

impl Maps {
    pub fn open(bpffs: &std::path::Path) -> Result<Self, EvictError> {
        let carried = pins::layouts(bpffs)
            .map_err(CountersError::from)?
            .carried
            .into_iter()
            .map(|layout| AddressMaps::open(bpffs, layout))
            .collect::<Result<_, _>>()?;
        let current = pins::maps_dir(bpffs, pins::LAYOUT_VERSION);
        Ok(Self {
            addresses: AddressMaps::open(bpffs, pins::LAYOUT_VERSION)?,
            other: open_map(&current.join(OTHER))?,
            carried,
            cpus: crate::bpf::cpus()?,
        })
    }

    fn in_carried(&self, &(ifindex, direction, address): &EntryKey) -> bool {
        self.carried
            .iter()
            .any(|m| m.contains(ifindex, direction, address))
    }

    /// Removes `key` and moves its counts to its interface's evicted
    /// bucket. `Ok(false)` when there was nothing to remove.
    pub fn evict(&mut self, key: &EntryKey) -> Result<bool, EvictError> {
        if self.in_carried(key) {
            return Ok(false);
        }
        let &(ifindex, direction, address) = key;
        let Some(taken) = self
            .addresses
            .take(ifindex, direction, address, self.cpus)
            .map_err(EvictError::Take)?
        else {
            return Ok(false);
        };
        let bucket = OtherKey::new(ifindex, direction, OtherKind::Evicted);
        let mut slots = match self.other.get(&bucket, 0) {
            Ok(values) => values.iter().copied().collect::<Vec<_>>(),
            Err(MapError::KeyNotFound) => vec![Counters::default(); self.cpus],
            Err(e) => return Err(EvictError::Fold(e)),
        };
        slots[0] += taken;
        let values =
            PerCpuValues::try_from(slots).map_err(|e| EvictError::Fold(MapError::IoError(e)))?;
        self.other
            .insert(bucket, values, 0)
            .map_err(EvictError::Fold)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use common::Direction;

    use super::*;

    fn count(ip: &str, packets: u64) -> AddressCount {
        crate::foreign::rx(ip, packets, packets * 60)
    }

    #[test]
    fn only_foreign_entries_unchanged_for_the_whole_period_are_idle() {
        let idle = Duration::from_secs(600);
        let t0 = Instant::now();
        let host = |ip: IpAddr| ip.to_string() != "10.0.0.1";
        let mut t = IdleTracker::default();
        let first = [
            count("10.0.0.1", 1),
            count("224.0.0.1", 1),
            count("224.0.0.2", 1),
        ];
        assert_eq!(t.idle(&first, t0, idle, host), []);
        // 224.0.0.2 keeps moving; the host's own address is never evicted.
        let later = [
            count("10.0.0.1", 1),
            count("224.0.0.1", 1),
            count("224.0.0.2", 2),
        ];
        assert_eq!(t.idle(&later, t0 + idle / 2, idle, host), []);
        let key = |ip: &str| (2, Direction::Rx, ip.parse().unwrap());
        assert_eq!(t.idle(&later, t0 + idle, idle, host), [key("224.0.0.1")]);
        assert_eq!(
            t.idle(&later, t0 + idle * 3 / 2, idle, host),
            [key("224.0.0.1"), key("224.0.0.2")]
        );
        // An entry that went away and came back starts over.
        assert_eq!(t.idle(&[], t0 + idle * 2, idle, host), []);
        assert_eq!(t.idle(&later, t0 + idle * 3, idle, host), []);
    }
}
