//! Who talks with each alias (issue 14): the kernel's peer table, the
//! daemon's record of idle peers, `GET /api/v1/peers`, `aliasstat peers`
//! and the peer metrics, against real traffic between namespaces, with
//! exact packet and byte counts.
//!
//! Needs root. Run with `cargo xtask test`, or `cargo test -p lab --test
//! peers -- [FILTER...]` with `ALIASSTAT_BIN` set.

mod fixture;
mod full;
mod idle;
mod listed;
mod retention;
mod upgrade;

use std::process::ExitCode;

use lab::harness::Case;

const CASES: &[Case] = &[
    ("each_alias_lists_exactly_its_peers", listed::exact),
    ("a_restart_keeps_every_peer", listed::restart),
    ("a_full_table_says_incomplete", full::run),
    ("idle_peers_move_into_the_record_and_expire", retention::run),
    ("idle_lists_exactly_the_silent_addresses", idle::run),
    ("an_upgrade_keeps_the_shared_tables_pairs", upgrade::run),
];

fn main() -> ExitCode {
    lab::harness::run("peers", CASES)
}
