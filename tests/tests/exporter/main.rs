//! The Prometheus exporter (issue 4), scraped by a real Prometheus server
//! and checked with `promtool`: exact per-address counts in both
//! directions and both families, every metric family with its labels, the
//! HTTP surface, concurrent scrapes, and a SIGHUP that renames series.
//!
//! The daemon and Prometheus both run inside the server's namespace and
//! talk over its loopback, which the daemon does not count, so scrapes add
//! nothing to the counts under test. Needs root: run with `cargo xtask
//! test -- <filter>`, or `cargo test --release -p lab --test exporter`
//! with `ALIASSTAT_BIN` set.

mod http_surface;
mod lab;
mod promtool;
mod scrape;
mod sighup;

use std::process::ExitCode;

fn main() -> ExitCode {
    ::lab::harness::run(
        "exporter",
        &[
            (
                "prometheus_scrapes_exact_counts_and_every_family",
                scrape::run,
            ),
            ("promtool_check_metrics_is_clean", promtool::run),
            ("http_surface_and_concurrent_scrapes", http_surface::run),
            (
                "sighup_relabels_series_and_no_count_goes_backwards",
                sighup::run,
            ),
        ],
    )
}
