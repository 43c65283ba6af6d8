//! Robustness: the daemon under the things that go wrong in production.
//! It is killed mid-transfer, upgraded to a new map layout, its interfaces
//! vanish and come back, addresses flap by the thousand, malformed frames
//! reach its programs, it runs with only the capabilities the systemd unit
//! grants, and HTTP clients misbehave. Counts stay exact throughout.
//!
//! Needs root. Run with `cargo test --release -p lab --test robustness --
//! [FILTER...]` with `ALIASSTAT_BIN` set (and optionally
//! `ALIASSTAT_UPGRADE_BIN`, see `lab::stress::upgrade_binary`). Tests run
//! one at a time; one whose kernel feature is missing is skipped with a
//! reason.

mod flapping;
mod http_abuse;
mod interfaces;
mod kill9;
mod malformed;
mod privileges;
mod upgrade;

use std::{
    io::Write as _,
    panic::{self, AssertUnwindSafe},
    process::ExitCode,
};

use anyhow::{Result, bail};

/// How a test ended, short of failing.
pub enum Outcome {
    Passed,
    Skipped(String),
}

type Test = (&'static str, fn() -> Result<Outcome>);

const TESTS: &[Test] = &[
    ("kill9_mid_traffic", kill9::run),
    ("layout_upgrade", upgrade::run),
    ("interface_recreated", interfaces::recreated),
    ("interface_down_up", interfaces::down_up),
    ("interface_late", interfaces::late),
    ("address_flapping", flapping::run),
    ("malformed_frames_tc", malformed::tc),
    ("malformed_frames_xdp", malformed::xdp),
    (
        "least_privilege_counts",
        privileges::counts_with_listed_caps,
    ),
    (
        "least_privilege_each_cap_needed",
        privileges::each_cap_needed,
    ),
    ("least_privilege_non_root_user", privileges::non_root_user),
    (
        "unprivileged_check_and_top",
        privileges::unprivileged_clients,
    ),
    ("systemd_unit_verifies", privileges::unit_verifies),
    ("http_concurrent_scrapers", http_abuse::concurrent_scrapers),
    ("http_slowloris", http_abuse::slowloris),
    ("http_huge_header", http_abuse::huge_header),
];

fn main() -> ExitCode {
    // libtest flags (`--nocapture`, `--test-threads=1`) mean nothing here;
    // every other argument is a substring filter on test names.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let unmet = prerequisites().err().map(|e| format!("{e:#}"));

    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for &&(name, test) in &selected {
        println!("=== {name}");
        let _ = std::io::stdout().flush();
        let outcome = match &unmet {
            Some(reason) => Ok(Outcome::Skipped(reason.clone())),
            None => match panic::catch_unwind(AssertUnwindSafe(test)) {
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
        "robustness: {} passed, {} failed, {} skipped",
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

/// What every test needs; without it they are all skipped.
fn prerequisites() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "not root: these tests create network namespaces, mount a bpffs and load BPF \
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
