//! A small test harness for the root-only suites that need more than
//! libtest gives: run cases one at a time, skip them all with the reason
//! when root or a kernel feature is missing, and end with the plain
//! `NAME: N passed, N failed, N skipped` line.

use std::{
    io::Write as _,
    panic::{self, AssertUnwindSafe},
    process::ExitCode,
};

use anyhow::{Result, bail};

/// How a case ended, short of failing.
pub enum Outcome {
    Passed,
    Skipped(String),
}

pub type Case = (&'static str, fn() -> Result<Outcome>);

/// Runs the `cases` whose names contain any command-line filter (all of
/// them without one) and reports under `suite`.
pub fn run(suite: &str, cases: &[Case]) -> ExitCode {
    run_with_rootless(suite, cases, &[])
}

/// [`run`], with `rootless` cases after `cases` that need none of the
/// prerequisites (an alias file checked outside any namespace), so they run
/// even where the others are skipped.
pub fn run_with_rootless(suite: &str, cases: &[Case], rootless: &[Case]) -> ExitCode {
    // libtest flags (`--nocapture`, `--test-threads=1`) mean nothing here;
    // every other argument is a substring filter on case names.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<_> = (cases.iter().map(|c| (c, true)))
        .chain(rootless.iter().map(|c| (c, false)))
        .filter(|((name, _), _)| {
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    let unmet = prerequisites().err().map(|e| format!("{e:#}"));

    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for &(&(name, case), needs_root) in &selected {
        println!("=== {name}");
        let _ = std::io::stdout().flush();
        let outcome = match unmet.as_ref().filter(|_| needs_root) {
            Some(reason) => Ok(Outcome::Skipped(reason.clone())),
            None => match panic::catch_unwind(AssertUnwindSafe(case)) {
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
        "{suite}: {} passed, {} failed, {} skipped",
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

/// What every case needs; without it they are all skipped.
fn prerequisites() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "not root: these tests create network namespaces, mount a bpffs and load BPF \
             programs (run `cargo xtask test` as root)"
        );
    }
    crate::netns::probe()?;
    crate::bpffs::mount()?;
    crate::remove_stale()
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
