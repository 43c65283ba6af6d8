//! End-to-end scenarios: the real `aliasstat` binary counting real traffic
//! between network namespaces, checked against exact packet and byte counts
//! derived from what each scenario sent.
//!
//! Needs root. Run with `cargo xtask test`, or `cargo test -p lab --test
//! scenarios -- [FILTER...]` with `ALIASSTAT_BIN` set. Scenarios run one at
//! a time; one whose kernel feature is missing is skipped with a reason.

mod gso;
mod map_full;
mod non_ip;
mod tcp_bulk;
mod udp;
mod xdp;

use std::{
    io::Write as _,
    panic::{self, AssertUnwindSafe},
    process::ExitCode,
};

use anyhow::{Result, bail};

/// How a scenario ended, short of failing.
pub enum Outcome {
    Passed,
    Skipped(String),
}

type Scenario = (&'static str, fn() -> Result<Outcome>);

const SCENARIOS: &[Scenario] = &[
    ("udp_ipv4_aliases", udp::ipv4),
    ("udp_ipv6_aliases", udp::ipv6),
    ("tcp_bulk_gso", tcp_bulk::run),
    ("non_ip_frames", non_ip::run),
    ("xdp_matches_tc", xdp::run),
    ("map_full_overflow", map_full::run),
    ("gso_test_run", gso::run),
];

fn main() -> ExitCode {
    // libtest flags (`--nocapture`, `--test-threads=1`) mean nothing here;
    // every other argument is a substring filter on scenario names.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<_> = SCENARIOS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let unmet = prerequisites().err().map(|e| format!("{e:#}"));

    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for &&(name, scenario) in &selected {
        println!("=== {name}");
        let _ = std::io::stdout().flush();
        let outcome = match &unmet {
            Some(reason) => Ok(Outcome::Skipped(reason.clone())),
            None => match panic::catch_unwind(AssertUnwindSafe(scenario)) {
                Ok(outcome) => outcome,
                Err(panic) => Err(anyhow::anyhow!("panicked: {}", panic_message(&*panic))),
            },
        };
        match outcome {
            Ok(Outcome::Passed) => {
                println!("--- {name}: ok");
                passed.push(name);
            }
            Ok(Outcome::Skipped(reason)) => {
                println!("--- {name}: skipped: {reason}");
                skipped.push((name, reason));
            }
            Err(e) => {
                println!("--- {name}: FAILED: {e:#}");
                failed.push(name);
            }
        }
    }

    println!();
    for (name, reason) in &skipped {
        println!("skipped {name}: {reason}");
    }
    for name in &failed {
        println!("failed  {name}");
    }
    println!(
        "scenarios: {} passed, {} failed, {} skipped",
        passed.len(),
        failed.len(),
        skipped.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What every scenario needs; without it they are all skipped.
fn prerequisites() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "not root: the scenarios create network namespaces, mount a bpffs and load BPF \
             programs (run `cargo xtask test` as root)"
        );
    }
    lab::netns::probe()?;
    lab::bpffs::mount()?;
    lab::remove_stale()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// Fails with both values, labelled, unless they are equal.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &T,
    actual: &T,
) -> Result<()> {
    if expected != actual {
        bail!("{what}:\n  expected {expected:?}\n  actual   {actual:?}");
    }
    Ok(())
}

/// Prints what a scenario expects, so a passing run still shows its numbers.
pub fn print_table(title: &str, table: &lab::snapshot::AddressTable) {
    for (addr, count) in table {
        println!("  {title:<10} {addr:<16} {count}");
    }
}
