//! `cargo xtask lint`: formatting and clippy, with warnings as errors.

use anyhow::Result;

use crate::{cmd, setup, workspace};

pub fn run() -> Result<()> {
    // Clippy builds userspace, whose build script needs bpf-linker.
    setup::run()?;
    cmd::run(workspace::cargo_nightly().args(["fmt", "--all", "--check"]))?;
    cmd::run(workspace::cargo().args(["clippy", "--all-targets", "--", "--deny", "warnings"]))?;
    // The lab and its root suites are no default member (they need root to
    // run), but they compile anywhere.
    cmd::run(workspace::cargo().args([
        "clippy",
        "-p",
        "lab",
        "--all-targets",
        "--",
        "--deny",
        "warnings",
    ]))?;
    // The eBPF crate is no default member: it only builds for the BPF target,
    // on nightly, with `core` built from rust-src.
    cmd::run(
        workspace::cargo_nightly()
            .args([
                "clippy",
                "-p",
                "ebpf-prog",
                "--target",
                "bpfel-unknown-none",
            ])
            .args(["-Z", "build-std=core", "--", "--deny", "warnings"]),
    )
}
