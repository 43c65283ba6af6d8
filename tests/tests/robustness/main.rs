//! Robustness: the daemon under the things that go wrong in production.
//! It is killed mid-transfer, upgraded to a new map layout, its interfaces
//! vanish and come back, addresses flap by the thousand, malformed frames
//! reach its programs, it runs with only the capabilities the systemd unit
//! grants, and HTTP clients misbehave. Counts stay exact throughout.
//!
//! Needs root. Run with `cargo test --release -p lab --test robustness --
//! [FILTER...]` with `ALIASSTAT_BIN` set (and optionally
//! `ALIASSTAT_FIRST_RELEASE_BIN`, see `lab::first_release::Old::binary`). Tests run
//! one at a time; one whose kernel feature is missing is skipped with a
//! reason.

mod flapping;
mod http_abuse;
mod interfaces;
mod kill9;
mod malformed;
mod privileges;
mod upgrade;

use std::process::ExitCode;

use lab::harness::Case;
pub use lab::harness::{Outcome, check_eq};

const TESTS: &[Case] = &[
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
    lab::harness::run("robustness", TESTS)
}
