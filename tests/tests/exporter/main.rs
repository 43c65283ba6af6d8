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

use ::lab::harness::Case;

const CASES: &[Case] = &[
    scrape::CASE,
    promtool::CASE,
    http_surface::CASE,
    sighup::CASE,
];

fn main() -> ExitCode {
    ::lab::harness::run("exporter", CASES)
}
