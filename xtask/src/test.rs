//! `cargo xtask test`: the whole suite, unit tests first, then the root-only
//! integration tests against the release binary.

use std::{ffi::OsString, process::Command};

use anyhow::Result;

use crate::{
    build::{self, Profile},
    cmd, setup, workspace,
};

#[derive(clap::Args)]
pub struct TestArgs {
    /// Passed to the integration test harness, e.g. a test name filter:
    /// `cargo xtask test -- udp`.
    #[arg(last = true)]
    harness_args: Vec<OsString>,
}

pub fn run(args: TestArgs) -> Result<()> {
    // Checked first so a non-root run fails in a second, not after the build.
    setup::require_root(
        "the integration tests create network namespaces and load BPF programs",
        "test",
        ", or plain `cargo test` for the unit tests alone",
    )?;
    setup::run()?;
    let binary = build::build(Profile::Release)?;

    // Plain `cargo test` at the root tests the default members; `--workspace`
    // would also pull in the eBPF crate, which only builds for the BPF target.
    cmd::run(workspace::cargo().arg("test"))?;
    cmd::run(workspace::cargo().args(["test", "-p", "common", "--features", "user"]))?;

    cmd::run(
        workspace::cargo()
            .env("ALIASSTAT_BIN", &binary)
            .args(["test", "--release", "-p", "lab", "--"])
            .args(&args.harness_args),
    )?;

    // Every benchmark once at a tiny size, so that none of them rots; no
    // number is checked. A run filtered to some scenarios skips it.
    if args.harness_args.is_empty() {
        crate::bench::run(crate::bench::BenchArgs {
            quick: true,
            full: false,
            only: Vec::new(),
        })?;
    }

    // promtool check/test of the alert rules, and every dashboard query
    // against a real Prometheus.
    cmd::run(Command::new("bash").arg(workspace::root().join("dashboards/check.sh")))
}
