//! Scale: ten thousand documented aliases on one veth, each with its own
//! traffic, and an alias file written to break the exposition format.
//! `check`, `aliases --json` and `/metrics` must be exact at that size:
//! every drift finding, every state count, every address's packets.
//!
//! Needs root. Run with `cargo test --release -p lab --test scale --
//! [FILTER...]` with `ALIASSTAT_BIN` set. No timing is asserted; the bench
//! measures time.

mod hostile;
mod ten_thousand;

use std::process::ExitCode;

use lab::harness::Case;

const TESTS: &[Case] = &[
    ("ten_thousand_aliases_exact", ten_thousand::run),
    ("hostile_alias_file_passes_promtool", hostile::run),
];

fn main() -> ExitCode {
    lab::harness::run("scale", TESTS)
}
