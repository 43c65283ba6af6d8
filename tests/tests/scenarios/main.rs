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

use std::process::ExitCode;

use lab::harness::Case;
pub use lab::harness::{Outcome, check_eq};

const SCENARIOS: &[Case] = &[
    ("udp_ipv4_aliases", udp::ipv4),
    ("udp_ipv6_aliases", udp::ipv6),
    ("tcp_bulk_gso", tcp_bulk::run),
    ("non_ip_frames", non_ip::run),
    ("xdp_matches_tc", xdp::run),
    ("map_full_overflow", map_full::run),
    ("gso_test_run", gso::run),
];

fn main() -> ExitCode {
    lab::harness::run("scenarios", SCENARIOS)
}

/// Prints what a scenario expects, so a passing run still shows its numbers.
pub fn print_table(title: &str, table: &lab::snapshot::AddressTable) {
    for (addr, count) in table {
        println!("  {title:<10} {addr:<16} {count}");
    }
}
