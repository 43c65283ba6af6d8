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
use lab::{Daemon, Netns};

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5300;
/// The promise: an address change is logged within a second.
const LOG_PROMPTLY: Duration = Duration::from_secs(1);
/// A bound on waits for things that have no deadline of their own (a
/// SIGHUP's log line, counts of packets already sent); only a hang comes
/// near it.
const PATIENCE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    lab::harness::run_with_rootless(
        "inventory",
        &[
            ("alias_comes_and_goes_while_udp_flows", come_and_go::run),
            ("vip_moves_between_two_hosts", vip_move::run),
            ("labels_and_ipv6_flags_are_shown", labels::run),
            (
                "address_added_right_after_ready_is_logged",
                early::address_added_is_logged,
            ),
            (
                "api_right_after_ready_knows_the_host",
                early::api_knows_the_host,
            ),
            ("check_exits_0_1_and_2", check::run),
            (
                "sighup_reloads_valid_files_and_keeps_the_last_good_one",
                sighup::run,
            ),
        ],
        &[
            ("config_error_duplicate_name", config_errors::duplicate_name),
            (
                "config_error_duplicate_address",
                config_errors::duplicate_address,
            ),
            (
                "config_error_invalid_address",
                config_errors::invalid_address,
            ),
            ("config_error_unknown_key", config_errors::unknown_key),
            ("config_error_empty_name", config_errors::empty_name),
        ],
    )
}

/// Polls `read` until `done` accepts it, for at most `within`. Address
/// events arrive within milliseconds.
fn poll<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    read: impl FnMut() -> Result<T>,
    done: impl Fn(&T) -> bool,
) -> Result<T> {
    lab::poll::until(what, within, Duration::from_millis(20), read, done)
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
