//! The peer tables: who each local address talks with, and when it last did.
//!
//! One plain hash entry per (interface, local address, remote address or
//! prefix), updated with atomic adds: its memory does not grow with the
//! CPU count, and a hot pair costs a lookup and two atomic adds. There is a
//! table per family, as for the addresses, so that an IPv4 pair hashes and
//! compares a 16-byte key rather than a 40-byte one. The clock is
//! `bpf_ktime_get_coarse_ns`, a tick-granular read of CLOCK_MONOTONIC that
//! costs no clock-source access, so it keeps working while no daemon runs;
//! the last-seen time is stored only once it has moved by
//! `LAST_SEEN_STEP_NS`, so a busy pair does not write it on every packet.
//! A pair that finds its table full is counted per local address in
//! `PEERS_MISSED` instead, so every list knows whether it is complete.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns, macros::map, maps::HashMap,
};
use common::{
    Counters, Direction,
    names::{DEFAULT_ADDRESS_CAPACITY, DEFAULT_PEER_CAPACITY},
    peer::{LAST_SEEN_STEP_NS, Peer4Key, PeerCounts, PeerKey, PeerMissKey},
};

// Static names match `common::names::{PEERS_V4, PEERS, PEERS_MISSED}`.
#[map]
static PEERS_V4: HashMap<Peer4Key, PeerCounts> = HashMap::pinned(DEFAULT_PEER_CAPACITY, 0);

/// The IPv6 pairs. It keeps the name (and the pin) it had when it held
/// both families, so that an upgraded daemon goes on with its entries.
#[map]
static PEERS: HashMap<PeerKey, PeerCounts> = HashMap::pinned(DEFAULT_PEER_CAPACITY, 0);

#[map]
static PEERS_MISSED: HashMap<PeerMissKey, Counters> = HashMap::pinned(DEFAULT_ADDRESS_CAPACITY, 0);

// Load-time globals (`common::names::PEER*`), set by user space before the
// programs are verified. They live in a frozen .rodata map, so the verifier
// knows their values and prunes the whole table when `PEERS_ON` is 0. The
// masks are the bytes of `common::peer::prefix_mask`, held as words so
// that they apply to the words the parser loads.
#[unsafe(no_mangle)]
static PEERS_ON: u8 = 1;
#[unsafe(no_mangle)]
static PEER_V4_MASK: [u32; 4] = [u32::MAX; 4];
#[unsafe(no_mangle)]
static PEER_V6_MASK: [u32; 4] = [u32::MAX, u32::MAX, 0, 0];
#[unsafe(no_mangle)]
static PEER_V4_PREFIX: u8 = 32;
#[unsafe(no_mangle)]
static PEER_V6_PREFIX: u8 = 64;

const EEXIST: i32 = 17;

/// Reads a load-time global; volatile, so that the compiler does not fold
/// in the default it was built with.
#[inline(always)]
fn global<T: Copy>(value: &'static T) -> T {
    // SAFETY: a valid, aligned static.
    unsafe { core::ptr::read_volatile(value) }
}

/// Counts one IPv4 packet for its (local, remote) pair.
#[inline(always)]
pub fn ipv4(ifindex: u32, dir: Direction, local: u32, remote: u32, wire: Counters) {
    if global(&PEERS_ON) == 0 {
        return;
    }
    let key = Peer4Key {
        ifindex,
        local: local.to_ne_bytes(),
        remote: (remote & global(&PEER_V4_MASK[0])).to_ne_bytes(),
        prefix: global(&PEER_V4_PREFIX),
        _pad: [0; 3],
    };
    record(&PEERS_V4, dir, &key, wire, || key.missed());
}

/// Counts one IPv6 packet for its (local, remote) pair.
#[inline(always)]
pub fn ipv6(ifindex: u32, dir: Direction, local: [u32; 4], remote: [u32; 4], wire: Counters) {
    if global(&PEERS_ON) == 0 {
        return;
    }
    let mask = global(&PEER_V6_MASK);
    let cut = [
        remote[0] & mask[0],
        remote[1] & mask[1],
        remote[2] & mask[2],
        remote[3] & mask[3],
    ];
    let key = PeerKey::ipv6_words(ifindex, local, cut, global(&PEER_V6_PREFIX));
    record(&PEERS, dir, &key, wire, || key.missed());
}

#[inline(always)]
fn record<K>(
    map: &HashMap<K, PeerCounts>,
    dir: Direction,
    key: &K,
    wire: Counters,
    missed: impl FnOnce() -> PeerMissKey,
) {
    // SAFETY: a helper without arguments, callable from any program.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let first = || PeerCounts::first(dir, wire, now);
    let counted = upsert(map, key, first, |slot| {
        // SAFETY: `slot` points into a live element of the table; the adds
        // are atomic because every CPU writes the same value.
        unsafe {
            let (packets, bytes) = match dir {
                Direction::Rx => (&raw mut (*slot).rx_packets, &raw mut (*slot).rx_bytes),
                Direction::Tx => (&raw mut (*slot).tx_packets, &raw mut (*slot).tx_bytes),
            };
            add(packets, wire.packets);
            add(bytes, wire.bytes);
            // An aligned 8-byte load or store is never torn, and racing
            // CPUs write nearly the same time; the BPF backend cannot
            // select an atomic store at this CPU level, so volatile it is.
            // A time another CPU just moved past `now` is kept.
            let last = &raw mut (*slot).last_seen_ns;
            if now.saturating_sub(last.read_volatile()) >= LAST_SEEN_STEP_NS {
                last.write_volatile(now);
            }
        }
    });
    if counted.is_err() {
        // The table is full (or out of memory): the address totals still
        // have the packet; say that this address's list lacks it.
        let wire_first = || wire;
        let _ = upsert(&PEERS_MISSED, &missed(), wire_first, |slot| {
            // SAFETY: as above, for an element of PEERS_MISSED.
            unsafe {
                add(&raw mut (*slot).packets, wire.packets);
                add(&raw mut (*slot).bytes, wire.bytes);
            }
        });
    }
}

/// `*counter += n`, atomically: the BPF target has no compare-and-swap, so
/// `AtomicU64::fetch_add` is not offered, but the kernel's atomic add is
/// what this intrinsic compiles to.
#[inline(always)]
unsafe fn add(counter: *mut u64, n: u64) {
    // SAFETY: the caller passes a pointer into a live map value.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, n) };
}

/// Adds to the entry at `key` in place with `add`, or creates it as
/// `first()` on a miss (built only then, off the hot path).
#[inline(always)]
fn upsert<K, V>(
    map: &HashMap<K, V>,
    key: &K,
    first: impl FnOnce() -> V,
    add: impl Fn(*mut V),
) -> Result<(), i32> {
    if let Some(slot) = map.get_ptr_mut(key) {
        add(slot);
        return Ok(());
    }
    match map.insert(key, first(), u64::from(BPF_NOEXIST)) {
        Ok(()) => Ok(()),
        // Another CPU created the entry between our lookup and insert.
        Err(e) if e == -EEXIST => match map.get_ptr_mut(key) {
            Some(slot) => {
                add(slot);
                Ok(())
            }
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}
