//! The alias inventory against a live host (issue 3): addresses that come
//! and go under traffic, a VIP that moves between two hosts, labels and
//! IPv6 flags, the alias file's errors, `aliasstat check`, and SIGHUP.
//!
//! Real kernel, real rtnetlink, real traffic between network namespaces,
//! checked against exact counts derived from what each test sent. Needs
//! root (except the alias file's errors, checked outside any namespace):
//! run with `cargo xtask test -- <filter>`, or `cargo test --release -p lab
//! --test inventory` with `ALIASSTAT_BIN` set.

mod check;
mod come_and_go;
mod config_errors;
mod early;
mod labels;
mod sighup;
mod vip_move;

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Result;
use lab::{Daemon, Netns, harness::Case};

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5300;
/// The promise: an address change is logged within a second.
const LOG_PROMPTLY: Duration = Duration::from_secs(1);
/// A bound on waits for things that have no deadline of their own (a
/// SIGHUP's log line, counts of packets already sent); only a hang comes
/// near it.
const PATIENCE: Duration = Duration::from_secs(10);

const CASES: &[Case] = &[
    come_and_go::CASE,
    vip_move::CASE,
    labels::CASE,
    early::LOGGED,
    early::API,
    check::CASE,
    sighup::CASE,
];

/// Alias files checked outside any namespace: these need no root.
const ROOTLESS: &[Case] = &[
    config_errors::case::<0>(),
    config_errors::case::<1>(),
    config_errors::case::<2>(),
    config_errors::case::<3>(),
    config_errors::case::<4>(),
    config_errors::case::<5>(),
];

fn main() -> ExitCode {
    lab::harness::run_with_rootless("inventory", CASES, ROOTLESS)
}

/// Runs an `ip` change in `ns` and waits for the daemon's log line about
/// it, which must come within [`LOG_PROMPTLY`] of starting the command.
fn change_and_expect_log(daemon: &Daemon, ns: &Netns, args: &[&str], line: &str) -> Result<()> {
    let since = daemon.log().len();
    let started = Instant::now();
    ns.ip(args)?;
    let logged = daemon.wait_for_line(since, line, LOG_PROMPTLY)?;
    println!(
        "  `ip {}` logged after {:?}: {}",
        args.join(" "),
        started.elapsed(),
        logged.trim()
    );
    Ok(())
}
