//! The live page at `/` (issue 18) in Debian's headless chromium, driven
//! over the DevTools protocol from inside the lab namespace, against a
//! daemon with live traffic; and its first screen at 10k addresses.
//!
//! Needs root and /usr/bin/chromium (skipped with the reason without it):
//! run with `cargo xtask test -- web`, or `cargo test --release -p lab
//! --test web` with `ALIASSTAT_BIN` set. The screenshot is written to
//! target/web/page.png.

mod browser;
mod live;
mod ten_thousand;

use std::process::ExitCode;

fn main() -> ExitCode {
    lab::harness::run(
        "web",
        &[
            ("page_shows_rates_filters_sorts_and_details", live::run),
            ("ten_thousand_addresses_first_screen", ten_thousand::run),
        ],
    )
}
