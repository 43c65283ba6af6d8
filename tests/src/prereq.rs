//! What every root-only test needs, checked once per test process.
//!
//! The libtest-harnessed suites (`tests/inventory.rs`, `tests/exporter.rs`)
//! call [`require`] first. Unmet prerequisites fail the test with the
//! reason rather than pass it silently: these tests exist only to run as
//! root (`cargo xtask test` refuses to run otherwise).

use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};

/// Root, `ip netns`, the lab's bpffs, and no leftovers of killed runs.
pub fn require() -> Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| check().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

fn check() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "not root: this test creates network namespaces, mounts a bpffs and loads BPF \
             programs; run it with `cargo xtask test` as root"
        );
    }
    crate::netns::probe()?;
    crate::bpffs::mount()?;
    // Once per process: two tests removing the same stale directory at
    // once would trip over each other.
    crate::remove_stale()
}
