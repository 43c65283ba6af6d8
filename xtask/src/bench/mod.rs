//! `cargo xtask bench`: what aliasstat costs, each figure against a
//! baseline measured in the same run.
//!
//! 1. [`packet`]: nanoseconds per packet under BPF_PROG_TEST_RUN, against
//!    empty TC and XDP programs, for one hot key and for 1k and 64k keys.
//! 2. [`live`]: packets per second through a veth with nothing, aliasstat
//!    or nftables accounting on the receiving end.
//! 3. [`scrape`]: a `/metrics` scrape, one map read (batched and per key)
//!    and the daemon's memory, for 1k to 1M map entries.
//! 4. [`aliases`]: N documented aliases configured on a veth with a packet
//!    each: scrapes plain and gzip against the map read and node_exporter's
//!    textfile collector, memory under concurrent scrapes, and `check`,
//!    `aliases --json`, reload and start-up against `ip -j addr show`.
//! 5. [`memory`]: every map's kernel memory (fdinfo) at the default and a
//!    large capacity, next to the formula here and on a 128-CPU host.
//! 6. [`history`]: the history store's write per interval, bytes per
//!    address per day, and a monthly report.
//! 7. [`peers`]: at a full peer table, the retention record's save after a
//!    sweep, and the rate task's distinct-peer count.
//!
//! Prints the tables and writes them into BENCHMARKS.md between its
//! markers; `--quick` runs everything at a tiny size for the test suite and
//! leaves BENCHMARKS.md alone. Needs root. Nothing here asserts a time:
//! the verdicts against the targets are reported, not enforced.

mod aliases;
mod history;
mod live;
mod memory;
mod packet;
mod peers;
mod scrape;
mod stats;
mod tools;

use std::fmt::Write as _;

use anyhow::{Context as _, Result};

use crate::{
    build::{self, Profile},
    setup, workspace,
};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Run every benchmark at a tiny size (a few seconds in all), to check
    /// that they still work; the numbers mean nothing. Writes
    /// target/bench-quick.md instead of BENCHMARKS.md.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// Also run the largest sizes (100k configured aliases).
    #[arg(long)]
    pub full: bool,
    /// Run only these parts; the tables go to target/bench-only.md and
    /// BENCHMARKS.md is left alone.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Part>,
}

/// The parts of the benchmark, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Packet,
    Live,
    Scrape,
    Aliases,
    Memory,
    History,
    Peers,
}

/// Sizes and repetitions of one run.
pub struct Plan {
    /// BPF_PROG_TEST_RUN repetitions per measurement.
    repeat: u32,
    /// Trials per figure; the median is reported.
    trials: usize,
    /// Seconds of flood per live trial.
    seconds: f64,
    /// Addresses in the nftables rulesets; the first and last are compared
    /// with aliasstat.
    nft_sizes: Vec<usize>,
    /// Entries in the address map for the userspace costs.
    map_sizes: Vec<u32>,
    /// Address capacities whose kernel memory is shown besides the default.
    memory_capacities: Vec<u32>,
    /// Aliases configured and documented for the inventory costs.
    alias_sizes: Vec<usize>,
}

/// One part's rows, one per size, each figure the median of `trials`.
pub struct Sweep<R> {
    pub rows: Vec<R>,
    pub trials: usize,
}

impl<R> Sweep<R> {
    /// Measures `size` at each of `sizes`; an error names the size, in
    /// `unit`s.
    fn run<S: Copy + std::fmt::Display>(
        plan: &Plan,
        sizes: &[S],
        unit: &str,
        mut size: impl FnMut(S) -> Result<R>,
    ) -> Result<Self> {
        let rows = sizes
            .iter()
            .map(|&n| size(n).with_context(|| format!("with {n} {unit}")))
            .collect::<Result<_>>()?;
        Ok(Self {
            rows,
            trials: plan.trials,
        })
    }
}

impl Plan {
    fn new(quick: bool, full: bool) -> Self {
        if quick {
            Self {
                repeat: 10_000,
                trials: 1,
                seconds: 0.2,
                nft_sizes: vec![10, 1000],
                map_sizes: vec![100, 1000],
                memory_capacities: vec![65_536],
                alias_sizes: vec![100],
            }
        } else {
            Self {
                repeat: 1_000_000,
                trials: 5,
                seconds: 2.0,
                nft_sizes: vec![10, 100, 1000],
                map_sizes: vec![1_000, 10_000, 100_000, 1_000_000],
                memory_capacities: vec![1_000_000],
                alias_sizes: if full {
                    vec![1_000, 10_000, 100_000]
                } else {
                    vec![1_000, 10_000]
                },
            }
        }
    }
}

/// A figure against its target.
pub struct Verdict {
    what: String,
    value: f64,
    target: f64,
    unit: &'static str,
    /// `true`: the value must not exceed the target.
    at_most: bool,
    /// Set when the measurement cannot decide: said instead of met/missed.
    undecided: Option<String>,
}

impl Verdict {
    fn at_most(what: &str, value: f64, target: f64, unit: &'static str) -> Self {
        Self {
            what: what.to_owned(),
            value,
            target,
            unit,
            at_most: true,
            undecided: None,
        }
    }

    fn undecided(mut self, why: String) -> Self {
        self.undecided = Some(why);
        self
    }

    fn at_least(what: &str, value: f64, target: f64, unit: &'static str) -> Self {
        Self {
            at_most: false,
            ..Self::at_most(what, value, target, unit)
        }
    }

    fn met(&self) -> bool {
        if self.at_most {
            self.value <= self.target
        } else {
            self.value >= self.target
        }
    }

    fn row(&self) -> String {
        let (sign, mut verdict) = match (self.at_most, self.met()) {
            (true, true) => ("≤", "met".to_owned()),
            (false, true) => ("≥", "met".to_owned()),
            (true, false) => (
                "≤",
                format!(
                    "**missed** by {:.2} {}",
                    self.value - self.target,
                    self.unit
                ),
            ),
            (false, false) => (
                "≥",
                format!(
                    "**missed** by {:.2} {}",
                    self.target - self.value,
                    self.unit
                ),
            ),
        };
        if let Some(why) = &self.undecided {
            verdict = format!("undecided: {why}");
        }
        format!(
            "| {} | {sign} {} {} | {:.2} {} | {verdict} |",
            self.what, self.target, self.unit, self.value, self.unit
        )
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    setup::require_root(
        "the benchmarks load BPF programs and create network namespaces",
        "bench",
        "",
    )?;
    setup::run()?;
    let aliasstat = build::build(Profile::Release)?;
    let tools = tools::Tools::build(aliasstat.clone())?;
    let plan = Plan::new(args.quick, args.full);
    let runs = |part| args.only.is_empty() || args.only.contains(&part);
    lab::remove_stale()?;
    lab::bpffs::mount()?;
    // The lab's daemon guard runs this binary; set before any thread runs.
    // SAFETY: xtask is single-threaded here, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("ALIASSTAT_BIN", &aliasstat) };

    let machine = tools::Machine::probe();
    let mut sections = Vec::new();
    let mut verdicts = Vec::new();
    // Each part's table is printed as it ends, then goes into the report.
    let mut part = |heading: &'static str, table: String, v: Vec<Verdict>| {
        println!("{table}");
        verdicts.extend(v);
        sections.push((heading, table));
    };
    if runs(Part::Packet) {
        println!("bench: per-packet cost (BPF_PROG_TEST_RUN)");
        let packet = packet::run(&tools, &plan)?;
        part(
            "1. Per-packet cost (BPF_PROG_TEST_RUN)",
            packet.table(),
            packet.verdicts(),
        );
    }
    if runs(Part::Live) {
        println!("bench: live throughput over a veth");
        let live = live::run(&tools, &plan)?;
        part(
            "2. Live throughput (UDP flood over a veth)",
            live.table(),
            live.verdicts(),
        );
    }
    if runs(Part::Scrape) {
        println!("bench: userspace (scrape, map read, memory)");
        let userspace = scrape::run(&tools, &plan)?;
        part(
            "3. Userspace: scrape, map read, memory",
            userspace.table(),
            userspace.verdicts(),
        );
    }
    if runs(Part::Aliases) {
        println!("bench: configured aliases (scrape, gzip, node_exporter, commands)");
        let aliases = aliases::run(&tools, &plan)?;
        part(
            "4. Configured aliases: scrape, node_exporter, commands",
            aliases.table(),
            aliases.verdicts(),
        );
    }
    if runs(Part::Memory) {
        println!("bench: kernel memory of the maps");
        let memory = memory::run(&tools, &plan.memory_capacities)?;
        println!("{}", memory.table());
        verdicts.extend(memory.verdicts());
        sections.push(("5. Kernel memory of the maps", memory.table()));
    }
    if runs(Part::History) {
        println!("bench: history store (write, storage, report)");
        let history = history::run(&tools, &plan)?;
        println!("{}", history.table());
        verdicts.extend(history.verdicts());
        sections.push(("6. History store", history.table()));
    }
    if runs(Part::Peers) {
        println!("bench: peers at a full table (record save, rate task)");
        let peers = peers::run(&tools, &plan)?;
        println!("{}", peers.table());
        sections.push(("7. Peers at a full table", peers.table()));
    }
    let report = report(&machine, &sections, &verdicts, args.quick);
    println!("{report}");

    if !args.only.is_empty() {
        let path = workspace::root().join("target/bench-only.md");
        std::fs::write(&path, &report)
            .with_context(|| format!("could not write {}", path.display()))?;
        println!(
            "bench: parts only, tables in {} (BENCHMARKS.md left alone)",
            path.display()
        );
        return Ok(());
    }
    if args.quick {
        let path = workspace::root().join("target/bench-quick.md");
        std::fs::write(&path, &report)
            .with_context(|| format!("could not write {}", path.display()))?;
        println!(
            "bench: quick run, tables in {} (BENCHMARKS.md left alone)",
            path.display()
        );
    } else {
        let path = workspace::root().join("BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
        std::fs::write(&path, stats::splice(&old, &report))
            .with_context(|| format!("could not write {}", path.display()))?;
        println!("bench: tables written to {}", path.display());
    }
    Ok(())
}

fn report(
    machine: &tools::Machine,
    sections: &[(&str, String)],
    verdicts: &[Verdict],
    quick: bool,
) -> String {
    let mut r = String::new();
    if quick {
        r.push_str("**Quick run: tiny sizes, one trial; the numbers mean nothing.**\n\n");
    }
    let _ = writeln!(r, "### Machine\n\n{}", machine.table());
    let _ = writeln!(
        r,
        "### Targets\n\n| figure | target | measured | verdict |\n|---|---|---|---|"
    );
    for v in verdicts {
        let _ = writeln!(r, "{}", v.row());
    }
    for (title, table) in sections {
        let _ = writeln!(r, "\n### {title}\n\n{table}");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_say_by_how_much() {
        let missed = Verdict::at_most("x", 38.0, 30.0, "ns");
        assert!(!missed.met());
        assert_eq!(
            missed.row(),
            "| x | ≤ 30 ns | 38.00 ns | **missed** by 8.00 ns |"
        );
        let met = Verdict::at_least("y", 97.5, 95.0, "%");
        assert!(met.met());
        assert_eq!(met.row(), "| y | ≥ 95 % | 97.50 % | met |");
    }
}
