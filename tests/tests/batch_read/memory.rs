//! Every map's kernel memory, as fdinfo reports it, against the formula.

use aliasstat::bpf::{load, memory::MapMemory};
use anyhow::Result;
use common::names::DEFAULT_ADDRESS_CAPACITY;
use lab::{BpfDir, harness::Outcome};

/// The default, and a capacity that is no power of two (the hash's
/// buckets are).
const CAPACITIES: [u32; 2] = [DEFAULT_ADDRESS_CAPACITY, 100_000];

pub fn matches_formula() -> Result<Outcome> {
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    for capacity in CAPACITIES {
        let pins = BpfDir::new("memory")?;
        let ebpf = load::load(pins.path(), capacity)?;
        let memory = MapMemory::of(&ebpf)?;
        let read = memory.read();
        let shapes: Vec<_> = memory.shapes().collect();
        let names: Vec<&str> = shapes.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            read.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            names,
            "every map has a memlock in its fdinfo"
        );
        for (map, (name, shape)) in read.iter().zip(&shapes) {
            println!("    capacity {capacity}: {name} {} bytes", map.bytes);
            assert_eq!(
                Some(map.bytes),
                shape.kernel_bytes(cpus as u64),
                "{name} at capacity {capacity}: {shape:?}"
            );
        }
        for family in load::ADDRESS_MAPS.map(str::to_ascii_lowercase) {
            assert!(
                shapes
                    .iter()
                    .any(|(name, s)| *name == family && s.max_entries == capacity),
                "{family}: {shapes:?}"
            );
        }
    }
    Ok(Outcome::Passed)
}
