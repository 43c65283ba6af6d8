//! Per-service counting (issue 15): the real daemon with its cgroup_skb
//! programs on a cgroup2 mount, and servers and clients that the test puts
//! in cgroups of its own ("units"), sending real traffic between lab
//! namespaces. Every count is exact; `drift` holds them against the
//! services the alias file documents.
//!
//! Needs root. Run with `cargo test -p lab --test services -- [FILTER...]`
//! with `ALIASSTAT_BIN` set.

mod drift;
mod fixture;
mod tcp;
mod two_daemons;
mod udp;
mod unserved;

use std::process::ExitCode;

use lab::harness::Case;
pub use lab::harness::{Outcome, check_eq};

const CASES: &[Case] = &[
    ("udp_per_unit", udp::run),
    ("tcp_bulk_in_a_unit", tcp::run),
    ("unserved_closed_ports", unserved::run),
    ("two_daemons_two_namespaces", two_daemons::run),
    ("documented_service_drift", drift::run),
];

fn main() -> ExitCode {
    lab::harness::run("services", CASES)
}
