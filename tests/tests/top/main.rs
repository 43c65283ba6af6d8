//! `aliasstat top` end to end (issue 5): a daemon counts UDP sent at known
//! rates to two documented aliases and an undocumented address, and
//! `aliasstat top` runs in a tmux pane, whose screen is read back with
//! `tmux capture-pane` and driven with `tmux send-keys`.
//!
//! Needs root and tmux (skipped with the reason without them): run with
//! `cargo xtask test -- top`, or `cargo test --release -p lab --test top`
//! with `ALIASSTAT_BIN` set.

mod rates;
mod screen;
mod services;
mod tmux;

use std::process::ExitCode;

fn main() -> ExitCode {
    lab::harness::run(
        "top",
        &[
            ("top_shows_rates_sorts_and_filters", rates::run),
            ("top_shows_the_services_of_an_address", services::run),
        ],
    )
}
