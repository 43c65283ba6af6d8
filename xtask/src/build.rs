//! `cargo xtask build`: the aliasstat binary, with its eBPF object embedded.

use std::{io::BufRead as _, path::PathBuf, process::Stdio};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{setup, workspace};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Build without optimizations, into target/debug (the default is
    /// target/release). The eBPF program is optimized either way.
    #[arg(long)]
    debug: bool,
}

#[derive(Clone, Copy)]
pub enum Profile {
    Debug,
    Release,
}

pub fn run(args: BuildArgs) -> Result<()> {
    setup::run()?;
    let profile = if args.debug {
        Profile::Debug
    } else {
        Profile::Release
    };
    let binary = build(profile)?;
    println!("aliasstat is at {}", binary.display());
    Ok(())
}

/// Builds the default workspace members and returns the absolute path of the
/// `aliasstat` binary, as cargo reports it (so a custom target dir is honoured).
pub fn build(profile: Profile) -> Result<PathBuf> {
    let mut cargo = workspace::cargo();
    cargo.args(["build", "--message-format=json-render-diagnostics"]);
    if let Profile::Release = profile {
        cargo.arg("--release");
    }
    let mut child = cargo
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start `cargo build`")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut binary = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("could not read `cargo build` output")?;
        if let Some(path) = aliasstat_executable(&line) {
            binary = Some(path);
        }
    }
    let status = child.wait().context("could not wait for `cargo build`")?;
    if !status.success() {
        bail!("`cargo build` failed ({status})");
    }
    binary.context("`cargo build` succeeded but reported no `aliasstat` executable")
}

/// The executable path in a cargo `compiler-artifact` message for the
/// `aliasstat` binary; `None` for any other message.
fn aliasstat_executable(message: &str) -> Option<PathBuf> {
    let message: Value = serde_json::from_str(message).ok()?;
    if message["reason"] != "compiler-artifact" || message["target"]["name"] != "aliasstat" {
        return None;
    }
    message["executable"].as_str().map(PathBuf::from)
}
