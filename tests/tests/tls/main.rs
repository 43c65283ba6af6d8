//! TLS and basic auth on the exporter (issue 17): the daemon with a web
//! config in exporter-toolkit's format, scraped by a real Prometheus over
//! HTTPS with basic auth, read by curl and `aliasstat top`, with client
//! certificates required, and started and reloaded with broken configs.
//!
//! The CA and every certificate are made by the test (rcgen). Needs root:
//! run with `cargo xtask test -- tls`, or `cargo test --release -p lab
//! --test tls -- [FILTER...]` with `ALIASSTAT_BIN` set.

mod bad_configs;
mod clients;
mod fixture;
mod scrape;

use std::process::ExitCode;

use lab::harness::Case;

const CASES: &[Case] = &[
    ("prometheus_scrapes_https_with_basic_auth", scrape::run),
    ("curl_and_top_with_credentials", clients::credentials),
    ("client_certificate_required", clients::client_certificate),
    ("bad_configs_fail_at_start", bad_configs::at_start),
    (
        "bad_configs_on_sighup_keep_the_previous",
        bad_configs::on_sighup,
    ),
];

fn main() -> ExitCode {
    lab::harness::run("tls", CASES)
}
