//! `cargo xtask deb`: target/debian/aliasstat_<version>_<arch>.deb, built by
//! cargo-deb from what `[package.metadata.deb]` in userspace/Cargo.toml
//! lists.
//!
//! cargo-deb runs with --no-build on a staging directory that this fills:
//! the binary (built here, or the one given; stripped), the man pages and completions
//! that the binary writes about itself (`aliasstat docs`), and the unit,
//! whose ExecStart moves from /usr/local/bin (a hand install) to /usr/bin.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build::{self, Profile},
    cmd, setup, workspace,
};

#[derive(clap::Args)]
pub struct DebArgs {
    /// Package this aliasstat binary instead of building one (the root
    /// tests pass the release binary they already test).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
}

/// Where a hand install puts the binary, as dist/aliasstat.service says.
const HAND_INSTALLED: &str = "/usr/local/bin/aliasstat";
const PACKAGED: &str = "/usr/bin/aliasstat";

pub fn run(args: DebArgs) -> Result<()> {
    setup::run()?;
    let binary = match args.binary {
        Some(binary) => binary,
        None => build::build(Profile::Release)?,
    };
    let stage = workspace::root().join("target/debian/stage");
    fill_stage(&stage, &binary)?;
    let out = cmd::stdout(
        Command::new(setup::cargo_deb())
            .env("CARGO", workspace::cargo().get_program())
            .current_dir(workspace::root())
            .args(["--package", "aliasstat", "--no-build", "--output"])
            .arg(workspace::root().join("target/debian")),
    )
    .context("cargo-deb could not build the package")?;
    let deb = out
        .lines()
        .last()
        .context("cargo-deb printed no package path")?;
    println!("{deb}");
    Ok(())
}

fn fill_stage(stage: &Path, binary: &Path) -> Result<()> {
    if stage.exists() {
        fs::remove_dir_all(stage)
            .with_context(|| format!("could not empty {}", stage.display()))?;
    }
    fs::create_dir_all(stage).with_context(|| format!("could not create {}", stage.display()))?;
    let staged = stage.join("aliasstat");
    fs::copy(binary, &staged).with_context(|| {
        format!(
            "could not copy {} to {}",
            binary.display(),
            staged.display()
        )
    })?;
    // cargo-deb strips only what it built itself, and policy (and lintian)
    // wants the symbols out of a packaged binary.
    cmd::run(Command::new("strip").arg(&staged))
        .context("could not strip the binary; `strip` comes with binutils")?;
    cmd::run(Command::new(&staged).arg("docs").arg(stage))
        .context("the binary could not write its man pages and completions")?;

    let unit_path = workspace::root().join("dist/aliasstat.service");
    let unit = fs::read_to_string(&unit_path)
        .with_context(|| format!("could not read {}", unit_path.display()))?;
    let exec = format!("ExecStart={HAND_INSTALLED} ");
    if !unit.contains(&exec) {
        bail!(
            "{} has no `{exec}…` line to point at {PACKAGED}",
            unit_path.display()
        );
    }
    let packaged = unit.replace(&exec, &format!("ExecStart={PACKAGED} "));
    let target = stage.join("aliasstat.service");
    fs::write(&target, packaged).with_context(|| format!("could not write {}", target.display()))
}
