//! One map, read both ways.

use aliasstat::bpf::{
    counters::{
        BATCH_ENTRIES, CounterSource as _, CountersError, MapReadError, PinnedMaps, ReadMethod,
    },
    load,
    sys::SysError,
};
use anyhow::Result;
use aya::{
    Ebpf,
    maps::{PerCpuHashMap, PerCpuValues},
};
use common::{
    Addr4Key, Addr6Key, Counters, Direction,
    names::{ADDRESSES_V4, ADDRESSES_V6},
};
use lab::{BpfDir, harness::Outcome};

/// More than two batches, and a last one that is not full.
const ENTRIES: u32 = 2 * BATCH_ENTRIES as u32 + 123;

pub fn equals_per_key() -> Result<Outcome> {
    let pins = BpfDir::new("batch")?;
    let mut ebpf = load::load(pins.path(), ENTRIES / 2 + 16)?;
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    fill(&mut ebpf, cpus)?;
    load::create_other_buckets(&mut ebpf, 1)?;

    let maps = PinnedMaps::open(pins.path())?;
    let batched = match maps.snapshot_by(ReadMethod::Batched) {
        Err(CountersError::Read(MapReadError::Batches {
            source: e @ SysError::Unsupported { .. },
            ..
        })) => {
            return Ok(Outcome::Skipped(format!(
                "this kernel has no batched map lookups: {e}"
            )));
        }
        read => read?,
    };
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
    Ok(Outcome::Passed)
}

/// [`ENTRIES`] addresses of both families and directions in the address
/// maps.
fn fill(ebpf: &mut Ebpf, cpus: usize) -> Result<()> {
    let [v4, v6] = ebpf
        .maps_disjoint_mut([ADDRESSES_V4, ADDRESSES_V6])
        .map(|m| m.expect("the object has both address maps"));
    let mut v4: PerCpuHashMap<_, Addr4Key, Counters> = PerCpuHashMap::try_from(v4)?;
    let mut v6: PerCpuHashMap<_, Addr6Key, Counters> = PerCpuHashMap::try_from(v6)?;
    for i in 0..ENTRIES {
        let [_, b, c, d] = i.to_be_bytes();
        let dir = if i % 3 == 0 {
            Direction::Tx
        } else {
            Direction::Rx
        };
        // A different count in every CPU's slot, so that a read mixing
        // up slots or entries cannot come out equal.
        let slots: Vec<Counters> = (0..cpus as u64)
            .map(|cpu| Counters::new(u64::from(i) * 10 + cpu, u64::from(i) * 1000 + cpu * 7))
            .collect();
        let slots = PerCpuValues::try_from(slots)?;
        match i % 2 {
            0 => v4.insert(Addr4Key::new(1 + i % 5, dir, [10, b, c, d]), slots, 0)?,
            _ => {
                let addr = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b, c, d];
                v6.insert(Addr6Key::new(1 + i % 5, dir, addr), slots, 0)?;
            }
        }
    }
    Ok(())
}
