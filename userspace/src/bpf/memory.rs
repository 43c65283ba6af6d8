//! The kernel memory of every map, as the kernel accounts it, and the
//! formula that predicts it from the CPU count and the capacity.
//!
//! The kernel's own figure is `memlock:` in the fdinfo of a map's fd (its
//! `map_mem_usage`, kernel 6.4+). It is read at scrape time from
//! descriptors kept from load time, so it needs no capability beyond what
//! loading took. The formula is for what fdinfo cannot show: the same
//! maps on a host with more CPUs than this one.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, OwnedFd},
};

use aya::{
    Ebpf,
    maps::{Map, MapData, MapError, MapInfo, MapType},
};

/// `BPF_F_MMAPABLE`: an array whose memory is page-rounded.
const BPF_F_MMAPABLE: u32 = 1 << 10;
const PAGE: u64 = 4096;

// Sizes of kernel structures, as `map_mem_usage` adds them (kernel/bpf/
// hashtab.c, arraymap.c, ringbuf.c). The three struct sizes are what
// fdinfo shows on 6.18 x86_64 (see BENCHMARKS.md); they change with
// the kernel build by a few hundred bytes, which the per-entry terms dwarf.
/// `struct bpf_htab`.
const HTAB: u64 = 896;
/// `struct bucket` (a list head and a lock), one per hash bucket.
const BUCKET: u64 = 16;
/// `struct htab_elem` before its key.
const HTAB_ELEM: u64 = 48;
/// Per-CPU lock counters of a hash: `HASHTAB_MAP_LOCK_COUNT` ints.
const HTAB_LOCKS_PER_CPU: u64 = 8 * 4;
/// `struct bpf_array`.
const ARRAY: u64 = 312;
/// `struct bpf_ringbuf_map`.
const RINGBUF: u64 = 304;
/// The ring buffer's consumer, producer and header pages.
const RINGBUF_META_PAGES: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("failed to read the kernel's description of map `{name}`")]
    Info {
        name: String,
        #[source]
        source: MapError,
    },
    #[error("failed to keep a descriptor of map `{name}` for its kernel memory")]
    Dup {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// What the kernel's accounting of a map depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

impl Shape {
    pub fn of(info: &MapInfo) -> Result<Self, MapError> {
        Ok(Self {
            map_type: info.map_type()?,
            key_size: info.key_size(),
            value_size: info.value_size(),
            max_entries: info.max_entries(),
            flags: info.map_flags(),
        })
    }

    /// The bytes the kernel charges for this map with `cpus` possible CPUs:
    /// what fdinfo's `memlock` says. `None` for a kind of map aliasstat
    /// does not create.
    pub fn kernel_bytes(&self, cpus: u64) -> Option<u64> {
        let entries = u64::from(self.max_entries);
        let value = u64::from(self.value_size).next_multiple_of(8);
        match self.map_type {
            // Preallocated: every entry's element and its per-CPU value
            // exist from creation, used or not.
            MapType::PerCpuHash => {
                let buckets = entries.next_power_of_two() * BUCKET;
                // The element holds the key and a pointer to its per-CPU
                // value.
                let element = HTAB_ELEM + u64::from(self.key_size).next_multiple_of(8) + 8;
                Some(
                    HTAB + buckets
                        + HTAB_LOCKS_PER_CPU * cpus
                        + entries * element
                        + entries * cpus * value,
                )
            }
            // Preallocated too, with one spare element per CPU (so that
            // an update can swap in a new element), and a per-CPU pointer
            // to each spare. Values are inline: the memory does not grow
            // with the CPU count but for those spares.
            MapType::Hash => {
                let buckets = entries.next_power_of_two() * BUCKET;
                let element = HTAB_ELEM + u64::from(self.key_size).next_multiple_of(8) + value;
                Some(
                    HTAB + buckets
                        + HTAB_LOCKS_PER_CPU * cpus
                        + (entries + cpus) * element
                        + cpus * 8,
                )
            }
            MapType::Array if self.flags & BPF_F_MMAPABLE == 0 => Some(ARRAY + entries * value),
            MapType::RingBuf => {
                let data_pages = entries / PAGE;
                let pages = RINGBUF_META_PAGES + data_pages;
                let page_pointers = (RINGBUF_META_PAGES + 2 * data_pages) * 8;
                Some(RINGBUF + pages * PAGE + page_pointers)
            }
            _ => None,
        }
    }
}

/// One map's kernel memory now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapBytes {
    /// The map's name in the object, lower-cased as metric labels are.
    pub name: String,
    pub bytes: u64,
}

/// A descriptor of every map of the loaded object, kept to read its
/// kernel memory for as long as the daemon runs.
#[derive(Default)]
pub struct MapMemory {
    maps: Vec<Tracked>,
}

struct Tracked {
    name: String,
    shape: Shape,
    fd: OwnedFd,
}

impl MapMemory {
    /// Call it before anything takes maps out of `ebpf` (aya-log takes its
    /// ring buffer).
    pub fn of(ebpf: &Ebpf) -> Result<Self, MemoryError> {
        let mut maps = Vec::new();
        for (name, map) in ebpf.maps() {
            let data = data(map);
            let info_err = |source| MemoryError::Info {
                name: name.to_owned(),
                source,
            };
            let shape = Shape::of(&data.info().map_err(info_err)?).map_err(info_err)?;
            let fd = data
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| MemoryError::Dup {
                    name: name.to_owned(),
                    source,
                })?;
            maps.push(Tracked {
                name: name.to_ascii_lowercase(),
                shape,
                fd,
            });
        }
        maps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self { maps })
    }

    /// Every map's kernel memory, in name order. A map whose fdinfo has no
    /// `memlock` (or cannot be read) is left out rather than shown as 0.
    pub fn read(&self) -> Vec<MapBytes> {
        self.maps
            .iter()
            .filter_map(|m| {
                let path = format!("/proc/self/fdinfo/{}", m.fd.as_raw_fd());
                let text = std::fs::read_to_string(path).ok()?;
                Some(MapBytes {
                    name: m.name.clone(),
                    bytes: memlock(&text)?,
                })
            })
            .collect()
    }

    /// Every map's name and shape, for the formula.
    pub fn shapes(&self) -> impl Iterator<Item = (&str, Shape)> {
        self.maps.iter().map(|m| (m.name.as_str(), m.shape))
    }
}

/// The `memlock:` figure of a map's fdinfo.
pub fn memlock(fdinfo: &str) -> Option<u64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("memlock:"))?
        .trim()
        .parse()
        .ok()
}

/// Every kind of map holds its [`MapData`]; aya has no accessor for it.
fn data(map: &Map) -> &MapData {
    match map {
        Map::Array(d)
        | Map::ArrayOfMaps(d)
        | Map::BloomFilter(d)
        | Map::CgroupArray(d)
        | Map::CgroupStorage(d)
        | Map::CgrpStorage(d)
        | Map::CpuMap(d)
        | Map::DevMap(d)
        | Map::DevMapHash(d)
        | Map::HashMap(d)
        | Map::HashOfMaps(d)
        | Map::InodeStorage(d)
        | Map::LpmTrie(d)
        | Map::LruHashMap(d)
        | Map::PerCpuArray(d)
        | Map::PerCpuCgroupStorage(d)
        | Map::PerCpuHashMap(d)
        | Map::PerCpuLruHashMap(d)
        | Map::PerfEventArray(d)
        | Map::ProgramArray(d)
        | Map::Queue(d)
        | Map::ReusePortSockArray(d)
        | Map::RingBuf(d)
        | Map::SockHash(d)
        | Map::SockMap(d)
        | Map::SkStorage(d)
        | Map::Stack(d)
        | Map::StackTraceMap(d)
        | Map::Unsupported(d)
        | Map::XskMap(d) => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Shape {
        Shape {
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
        }
    }

    /// `memlock` as fdinfo showed it on 6.18 with 2 possible CPUs, for
    /// layout v1's address map (24-byte keys) at five capacities, the OTHER
    /// map (8-byte keys, as the IPv4 map's), the arrays and aya-log's
    /// 128 KiB ring buffer.
    #[test]
    fn formula_matches_what_fdinfo_showed() {
        let cases = [
            (shape(MapType::PerCpuHash, 24, 16, 1), 1_088),
            (shape(MapType::PerCpuHash, 24, 16, 4_096), 525_248),
            (shape(MapType::PerCpuHash, 24, 16, 16_384), 2_098_112),
            (shape(MapType::PerCpuHash, 24, 16, 65_536), 8_389_568),
            (shape(MapType::PerCpuHash, 24, 16, 1_000_000), 128_778_176),
            (shape(MapType::PerCpuHash, 24, 16, 1_048_576), 134_218_688),
            (shape(MapType::PerCpuHash, 8, 16, 4_096), 459_712),
            // The peer table at its default capacity, and its
            // not-recorded counters at the address map's.
            (shape(MapType::Hash, 40, 48, 131_072), 19_924_192),
            // The IPv4 and IPv6 peer tables at their default capacity.
            (shape(MapType::Hash, 16, 48, 98_304), 13_108_400),
            (shape(MapType::Hash, 40, 48, 98_304), 15_467_744),
            (shape(MapType::Hash, 24, 16, 16_384), 1_705_088),
            (shape(MapType::Hash, 24, 16, 100_000), 10_898_304),
            (shape(MapType::Array, 4, 111, 1), 424),
            (shape(MapType::Array, 4, 16, 1), 328),
            (shape(MapType::Array, 4, 8, 1), 320),
            (shape(MapType::RingBuf, 0, 0, 1 << 17), 144_200),
        ];
        for (shape, fdinfo) in cases {
            assert_eq!(shape.kernel_bytes(2), Some(fdinfo), "{shape:?}");
        }
        assert_eq!(shape(MapType::LpmTrie, 8, 8, 1).kernel_bytes(2), None);
    }

    /// The default maps on a 128-CPU host: each address map is 12,288 ×
    /// (element + 128 × 16) bytes plus its buckets, about 25 MiB; with
    /// OTHER, 58.5 MiB, under the 64 MiB the default must stay within.
    #[test]
    fn default_maps_on_128_cpus() {
        use common::{Addr4Key, Addr6Key, OtherKey, names};
        let per_cpu_hash = |key: usize, entries| {
            shape(MapType::PerCpuHash, key as u32, 16, entries)
                .kernel_bytes(128)
                .unwrap()
        };
        let v4 = per_cpu_hash(size_of::<Addr4Key>(), names::DEFAULT_ADDRESS_CAPACITY);
        let v6 = per_cpu_hash(size_of::<Addr6Key>(), names::DEFAULT_ADDRESS_CAPACITY);
        let other = per_cpu_hash(size_of::<OtherKey>(), names::OTHER_CAPACITY);
        assert_eq!((v4, v6, other), (26_219_392, 26_416_000, 8_721_280));
        assert!(v4 + v6 + other < 64 << 20);
    }

    /// The default peer tables on a 128-CPU host: their values are not per
    /// CPU, so 128 CPUs add only the spare elements, about 27 MiB for both
    /// families, under the 32 MiB the issue allows.
    #[test]
    fn default_peer_tables_on_128_cpus() {
        use common::{
            names,
            peer::{Peer4Key, PeerCounts, PeerKey},
        };
        let table = |key: usize| {
            let value = size_of::<PeerCounts>() as u32;
            shape(
                MapType::Hash,
                key as u32,
                value,
                names::DEFAULT_PEER_CAPACITY,
            )
            .kernel_bytes(128)
            .unwrap()
        };
        let (v4, v6) = (table(size_of::<Peer4Key>()), table(size_of::<PeerKey>()));
        assert_eq!((v4, v6), (13_127_552, 15_489_920));
        assert!(v4 + v6 <= 32 << 20, "{} bytes", v4 + v6);
    }

    #[test]
    fn memlock_is_read_from_fdinfo() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nmap_type:\t5\n\
                      key_size:\t24\nvalue_size:\t16\nmax_entries:\t16384\nmap_flags:\t0x0\n\
                      map_extra:\t0x0\nmemlock:\t2098112\nmap_id:\t1349\nfrozen:\t0\n";
        assert_eq!(memlock(fdinfo), Some(2_098_112));
        assert_eq!(memlock("pos:\t0\n"), None);
        assert_eq!(memlock("memlock:\tlots\n"), None);
    }
}
