//! The history and `aliasstat report` (issue 16): exact totals per alias
//! and owner across a restart, a SIGKILL and a simulated reboot (detach),
//! the Prometheus source against a backfilled TSDB and against a live
//! scrape, bad input, and `/api/v1/history` (the live page's long-range
//! chart) with exact bytes.
//!
//! Needs root. Run with `cargo test --release -p lab --test history --
//! [FILTER...]` with `ALIASSTAT_BIN` set. No timing is asserted.

mod api;
mod bad_input;
mod fixture;
mod local;
mod prometheus;

use std::process::ExitCode;

use lab::harness::Case;
pub use lab::harness::{Outcome, check_eq};

const TESTS: &[Case] = &[
    ("local_store_restart_kill_and_reboot", local::run),
    ("bad_input_gives_clear_errors", bad_input::run),
    ("prometheus_backfill_exact", prometheus::backfill),
    (
        "prometheus_behind_tls_and_basic_auth",
        prometheus::behind_tls,
    ),
    ("both_sources_agree_on_a_live_run", prometheus::live),
    ("api_history_exact_bytes_per_address", api::run),
];

fn main() -> ExitCode {
    lab::harness::run("history", TESTS)
}
