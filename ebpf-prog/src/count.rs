//! The maps and the per-packet update.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_NOEXIST,
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{Array, PerCpuHashMap},
};
use aya_log_ebpf::warn;
use common::{
    Addr4Key, Addr6Key, Counters, Direction, OtherKey, OtherKind,
    names::{DEFAULT_ADDRESS_CAPACITY, FULL_LOG_INTERVAL_NS, OTHER_CAPACITY},
};

use crate::{
    frame::Frame,
    parse::{Seen, classify},
    peers,
};

// Static names match `common::names::{ADDRESSES_V4, ADDRESSES_V6, OTHER}`.
// One map per family, so that an IPv4 key is 8 bytes: the kernel hashes
// and compares the whole key on every lookup.
#[map]
static ADDRESSES_V4: PerCpuHashMap<Addr4Key, Counters> =
    PerCpuHashMap::pinned(DEFAULT_ADDRESS_CAPACITY, 0);

#[map]
static ADDRESSES_V6: PerCpuHashMap<Addr6Key, Counters> =
    PerCpuHashMap::pinned(DEFAULT_ADDRESS_CAPACITY, 0);

#[map]
static OTHER: PerCpuHashMap<OtherKey, Counters> = PerCpuHashMap::pinned(OTHER_CAPACITY, 0);

/// The `bpf_ktime_get_ns` of the last "map full" log line, so that the
/// condition is logged at a bounded rate. User space never opens it.
#[map]
static FULL_LOGGED_AT: Array<u64> = Array::with_max_entries(1, 0);

const EEXIST: i32 = 17;

/// Counts one frame in exactly one bucket.
#[inline(always)]
pub fn frame<C: Frame + EbpfContext>(ctx: &C, dir: Direction) {
    let ifindex = ctx.ifindex();
    let (counted, wire) = match classify(ctx, dir) {
        Seen::V4(addr, remote, wire) => {
            peers::ipv4(ifindex, dir, addr, remote, wire);
            let key = Addr4Key::new(ifindex, dir, addr.to_ne_bytes());
            (add(&ADDRESSES_V4, &key, wire), wire)
        }
        Seen::V6(addr, remote, wire) => {
            peers::ipv6(ifindex, dir, addr, remote, wire);
            let key = Addr6Key::from_words(ifindex, dir, addr);
            (add(&ADDRESSES_V6, &key, wire), wire)
        }
        Seen::NonIp => {
            let wire = Counters::new(1, u64::from(ctx.wire_len()));
            other(OtherKey::new(ifindex, dir, OtherKind::NonIp), wire);
            return;
        }
    };
    if counted.is_err() {
        // The only failure left after EEXIST is handled is a full map
        // (E2BIG) or no memory: either way, the packet still counts.
        other(OtherKey::new(ifindex, dir, OtherKind::Overflow), wire);
        log_full(ctx);
    }
}

#[inline(always)]
fn other(key: OtherKey, wire: Counters) {
    // User space creates every attached interface's entries, so this only
    // fails when OTHER itself is full: there is no bucket left to use.
    let _ = add(&OTHER, &key, wire);
}

/// Adds in place to this CPU's slot; inserts only on a miss.
#[inline(always)]
pub(crate) fn add<K>(map: &PerCpuHashMap<K, Counters>, key: &K, wire: Counters) -> Result<(), i32> {
    if bump(map, key, wire) {
        return Ok(());
    }
    match map.insert(key, wire, u64::from(BPF_NOEXIST)) {
        Ok(()) => Ok(()),
        // Another CPU created the entry between our lookup and insert.
        Err(e) if e == -EEXIST && bump(map, key, wire) => Ok(()),
        Err(e) => Err(e),
    }
}

#[inline(always)]
fn bump<K>(map: &PerCpuHashMap<K, Counters>, key: &K, wire: Counters) -> bool {
    match map.get_ptr_mut(key) {
        Some(slot) => {
            // SAFETY: a per-CPU slot is only written by this CPU, and the
            // program is not preempted while it runs.
            unsafe {
                (*slot).packets += wire.packets;
                (*slot).bytes += wire.bytes;
            }
            true
        }
        None => false,
    }
}

/// Logs that an address map is full, at most once per interval.
#[inline(never)]
fn log_full<C: EbpfContext>(ctx: &C) {
    let Some(last) = FULL_LOGGED_AT.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: a helper without arguments, callable from any program.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: a single u64 slot; a racing CPU can at worst log twice.
    unsafe {
        if *last != 0 && now.wrapping_sub(*last) < FULL_LOG_INTERVAL_NS {
            return;
        }
        *last = now;
    }
    warn!(
        ctx,
        "an address map is full: new addresses are counted in the overflow bucket; raise --map-capacity"
    );
}
