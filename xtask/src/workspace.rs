//! Where the workspace is, and how to run cargo in it.

use std::{env, path::Path, process::Command};

/// The workspace root, which holds xtask.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory has a parent")
}

/// The cargo that runs xtask, so nested builds use the same toolchain,
/// started at the workspace root so `.cargo/config.toml` applies.
pub fn cargo() -> Command {
    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(root());
    cargo
}

/// The rustup proxy, which understands `+nightly`.
pub fn cargo_nightly() -> Command {
    let mut cargo = Command::new("cargo");
    cargo.arg("+nightly").current_dir(root());
    cargo
}
