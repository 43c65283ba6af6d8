//! The batched map read (`BPF_MAP_LOOKUP_BATCH`, userspace/src/sys.rs)
//! returns exactly what the per-key iteration does, on a real pinned map
//! spanning several batches, with a different count in every CPU's slot.
//!
//! Needs root; without it the test says so and passes vacuously, like the
//! other root-only suites when run by hand.

use aliasstat::bpf::{
    counters::{BATCH_ENTRIES, CounterSource as _, PinnedMaps, ReadMethod},
    load,
};
use aya::maps::{PerCpuHashMap, PerCpuValues};
use common::{AddrKey, Counters, Direction, names::ADDRESSES};
use lab::BpfDir;

/// More than two batches, and a last one that is not full.
const ENTRIES: u32 = 2 * BATCH_ENTRIES as u32 + 123;

#[test]
fn batched_snapshot_equals_per_key_snapshot() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not root (loading BPF maps needs it; run `cargo xtask test`)");
        return Ok(());
    }
    lab::bpffs::mount()?;
    let pins = BpfDir::new("batch")?;
    let mut ebpf = load::load(pins.path(), ENTRIES + 16)?;
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    {
        let map = ebpf
            .map_mut(ADDRESSES)
            .expect("the object has an address map");
        let mut map: PerCpuHashMap<_, AddrKey, Counters> = PerCpuHashMap::try_from(map)?;
        for i in 0..ENTRIES {
            let [_, b, c, d] = i.to_be_bytes();
            let dir = if i % 3 == 0 {
                Direction::Tx
            } else {
                Direction::Rx
            };
            let key = match i % 2 {
                0 => AddrKey::ipv4(1 + i % 5, dir, [10, b, c, d]),
                _ => AddrKey::ipv6(
                    1 + i % 5,
                    dir,
                    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b, c, d],
                ),
            };
            // A different count in every CPU's slot, so that a read mixing
            // up slots or entries cannot come out equal.
            let slots: Vec<Counters> = (0..cpus as u64)
                .map(|cpu| Counters::new(u64::from(i) * 10 + cpu, u64::from(i) * 1000 + cpu * 7))
                .collect();
            map.insert(key, PerCpuValues::try_from(slots)?, 0)?;
        }
    }
    load::create_other_buckets(&mut ebpf, 1)?;

    let maps = PinnedMaps::open(pins.path())?;
    let batched = maps.snapshot_by(ReadMethod::Batched)?;
    let per_key = maps.snapshot_by(ReadMethod::PerKey)?;
    assert_eq!(batched.addresses.len(), ENTRIES as usize);
    assert!(!batched.other.is_empty(), "the OTHER buckets were not read");
    assert_eq!(batched, per_key);
    // And the sums are the slots' sums, not just equal to each other.
    let cpus = cpus as u64;
    let packets: u64 = batched.addresses.iter().map(|a| a.counters.packets).sum();
    let expected: u64 = (0..u64::from(ENTRIES))
        .map(|i| cpus * i * 10 + cpus * (cpus - 1) / 2)
        .sum();
    assert_eq!(packets, expected);
    // The daemon's path (batched, with the per-key fallback) agrees too.
    assert_eq!(maps.snapshot()?, batched);
    Ok(())
}
