//! The Debian package (`cargo xtask deb`) on this machine: its contents and
//! conffile, lintian, `dpkg -i`, what the installed files do, and `dpkg -r`
//! then `dpkg -P` removing everything but what policy keeps. Also that text
//! from a hostile alias file or interface never reaches a terminal raw.
//!
//! Needs root. Run with `cargo test --release -p lab --test package --
//! [FILTER...]` with `ALIASSTAT_BIN` set: the package is built once, from
//! that binary (`cargo xtask deb --binary`), and shared by the cases.

mod contents;
mod hostile;
mod install;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    sync::OnceLock,
};

use anyhow::{Context as _, Result, anyhow};
pub use lab::harness::{Outcome, check_eq};
use lab::{cmd, harness::Case};

const TESTS: &[Case] = &[
    ("contents_and_conffile", contents::run),
    ("lintian_reports_no_error", contents::lintian),
    ("install_remove_purge", install::run),
    ("hostile_text_stays_inert", hostile::run),
];

fn main() -> ExitCode {
    lab::harness::run("package", TESTS)
}

/// The workspace root, where `cargo xtask` runs.
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The .deb, built on first use from the binary under test.
fn package() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("building the package failed earlier: {e}"))
}

fn build() -> Result<PathBuf> {
    let binary = lab::daemon::binary()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = cmd::run(
        Command::new(cargo)
            .current_dir(root())
            .args(["xtask", "deb", "--binary"])
            .arg(&binary),
    )?;
    let deb = PathBuf::from(
        out.lines()
            .last()
            .context("`cargo xtask deb` printed nothing")?,
    );
    let name = deb.file_name().map(|n| n.to_string_lossy().into_owned());
    check_eq(
        "package file name",
        &Some(format!("aliasstat_{}_{}.deb", debian_version(), arch()?)),
        &name,
    )?;
    Ok(deb)
}

/// The package's version: the crate's, with Debian revision 1.
fn debian_version() -> String {
    format!("{}-1", env!("CARGO_PKG_VERSION"))
}

fn arch() -> Result<String> {
    Ok(cmd::run(Command::new("dpkg").arg("--print-architecture"))?
        .trim()
        .to_owned())
}

/// The subcommands `aliasstat --help` lists, each of which has a man page.
fn subcommands() -> Result<Vec<String>> {
    let help = cmd::run(Command::new(lab::daemon::binary()?).arg("--help"))?;
    let listed = help
        .split("Commands:\n")
        .nth(1)
        .context("`aliasstat --help` has no Commands: section")?;
    Ok(listed
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect())
}
