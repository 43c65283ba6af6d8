//! Kernel memory of every map, as fdinfo reports it on this host, next to
//! the formula (userspace/src/bpf/memory.rs) for this host and for a
//! 128-CPU one, at the default and at a large address capacity. The maps
//! are per-CPU, so the CPU count is what these 2-CPU machines cannot show.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};

use super::{
    Verdict,
    stats::{count, mib},
    tools::Tools,
};

/// The host the formula is evaluated for.
pub const BIG_HOST_CPUS: u64 = 128;
/// The target for the default configuration on [`BIG_HOST_CPUS`].
const TARGET_MIB: f64 = 64.0;

pub struct Map {
    pub name: String,
    pub fdinfo: Option<u64>,
    pub formula: Option<u64>,
    pub big_host: Option<u64>,
}

pub struct Capacity {
    pub capacity: u32,
    pub maps: Vec<Map>,
}

pub struct Memory {
    pub cpus: u64,
    /// The default capacity first.
    pub capacities: Vec<Capacity>,
}

/// The default capacity, then each of `large`.
pub fn run(tools: &Tools, large: &[u32]) -> Result<Memory> {
    let mut cpus = 0;
    let mut out = Vec::new();
    let big_host = BIG_HOST_CPUS.to_string();
    let runs = std::iter::once(None).chain(large.iter().map(|c| Some(c.to_string())));
    for capacity in runs {
        let mut args = vec!["memory", "--cpus", &big_host];
        if let Some(c) = &capacity {
            args.extend(["--capacity", c]);
        }
        let report = tools.probe(&args)?;
        cpus = report["cpus"].as_u64().context("probe memory: no cpus")?;
        let capacity = report["capacity"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .context("probe memory: no capacity")?;
        let maps = report["maps"]
            .as_array()
            .context("probe memory: no maps")?
            .iter()
            .map(|m| Map {
                name: m["name"].as_str().unwrap_or("?").to_owned(),
                fdinfo: m["fdinfo"].as_u64(),
                formula: m["formula"].as_u64(),
                big_host: m["formula_cpus"].as_u64(),
            })
            .collect();
        out.push(Capacity { capacity, maps });
    }
    Ok(Memory {
        cpus,
        capacities: out,
    })
}

/// Bytes as a table cell: exact, and in MiB when that is more than a
/// rounding of zero.
fn cell(bytes: Option<u64>) -> String {
    match bytes {
        None => "–".to_owned(),
        Some(b) if b >= 100 * 1024 => format!("{} ({})", count(b as f64), mib(b as f64)),
        Some(b) => count(b as f64),
    }
}

fn total(maps: &[Map], pick: impl Fn(&Map) -> Option<u64>) -> Option<u64> {
    maps.iter().map(pick).sum()
}

impl Memory {
    pub fn table(&self) -> String {
        let mut t = String::new();
        for c in &self.capacities {
            let _ = writeln!(
                t,
                "Address capacity {} (`--map-capacity`):\n\n\
                 | map | fdinfo `memlock`, {} CPUs | formula, {} CPUs | formula, {BIG_HOST_CPUS} CPUs |\n\
                 |---|---|---|---|",
                count(f64::from(c.capacity)),
                self.cpus,
                self.cpus
            );
            for m in &c.maps {
                let mismatch = if m.fdinfo == m.formula {
                    ""
                } else {
                    " **≠**"
                };
                let _ = writeln!(
                    t,
                    "| {} | {} | {}{mismatch} | {} |",
                    m.name,
                    cell(m.fdinfo),
                    cell(m.formula),
                    cell(m.big_host)
                );
            }
            let _ = writeln!(
                t,
                "| **all** | {} | {} | **{}** |\n",
                cell(total(&c.maps, |m| m.fdinfo)),
                cell(total(&c.maps, |m| m.formula)),
                cell(total(&c.maps, |m| m.big_host))
            );
        }
        t.push_str(
            "The address and OTHER maps are preallocated per-CPU hashes: the kernel charges \
             every entry its element (key rounded to 8 bytes, plus 56) and one 16-byte value \
             per possible CPU, used or not, plus 16 bytes per hash bucket (capacity rounded up \
             to a power of two). The formula is the kernel's `map_mem_usage`; **≠** would mark \
             a map where fdinfo disagrees with it.\n",
        );
        t
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        // The first is the default capacity.
        self.capacities
            .first()
            .into_iter()
            .filter_map(|c| total(&c.maps, |m| m.big_host))
            .map(|bytes| {
                Verdict::at_most(
                    "default kernel memory on a 128-CPU host (formula)",
                    bytes as f64 / (1024.0 * 1024.0),
                    TARGET_MIB,
                    "MiB",
                )
            })
            .collect()
    }
}
