//! The first release of aliasstat (map layout v1), built from git for the
//! upgrade test: the binary an upgrade really starts from.
//!
//! It is built once in a temporary git worktree under
//! `target/first-release/`, with a target directory of its own there, and
//! the binary is kept as `target/first-release/aliasstat-<commit>`, so that
//! later runs build nothing. A debug build: it only has to count, and it
//! builds in about half the time of a release one.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, ensure};

use crate::cmd;

/// The first release's commit.
pub const COMMIT: &str = "d04eda6";

/// The first release's binary: `$ALIASSTAT_FIRST_RELEASE_BIN` if set, else
/// the cached build, else built now (minutes, the first time). `Ok(Err)`
/// says why it cannot be built here, e.g. a shallow clone without the
/// commit.
pub fn binary() -> Result<Result<PathBuf, String>> {
    if let Some(path) = std::env::var_os("ALIASSTAT_FIRST_RELEASE_BIN") {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "ALIASSTAT_FIRST_RELEASE_BIN={} is not a file",
            path.display()
        );
        return Ok(Ok(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the lab crate lives in the workspace")?
        .to_owned();
    let cache = root.join("target/first-release");
    let binary = cache.join(format!("aliasstat-{COMMIT}"));
    if binary.is_file() {
        return Ok(Ok(binary));
    }
    let has_commit = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["cat-file", "-e", &format!("{COMMIT}^{{commit}}")])
        .status()
        .is_ok_and(|s| s.success());
    if !has_commit {
        return Ok(Err(format!(
            "commit {COMMIT} (the first release) is not in this clone; `git fetch --unshallow` brings it"
        )));
    }
    let linker = root.join("target/tools/bin/bpf-linker");
    ensure!(
        linker.is_file(),
        "no bpf-linker at {}: run `cargo xtask setup`",
        linker.display()
    );
    let tree = Worktree::add(&root, &cache.join("src"))?;
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .current_dir(&tree.dir)
        .args(["build", "-p", "aliasstat", "--bin", "aliasstat"])
        .env("CARGO_TARGET_DIR", cache.join("target"))
        // The old tree names the linker relative to itself, where there is
        // none: point it at this workspace's.
        .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", &linker);
    cmd::run(&mut build).with_context(|| format!("building aliasstat at {COMMIT}"))?;
    let built = cache.join("target/debug/aliasstat");
    let partial = binary.with_extension("partial");
    fs::copy(&built, &partial).with_context(|| format!("copying {}", built.display()))?;
    fs::rename(&partial, &binary)?;
    Ok(Ok(binary))
}

/// A detached git worktree at [`COMMIT`], removed on drop, also when the
/// build fails or panics.
struct Worktree {
    root: PathBuf,
    dir: PathBuf,
}

impl Worktree {
    fn add(root: &Path, dir: &Path) -> Result<Self> {
        let tree = Self {
            root: root.to_owned(),
            dir: dir.to_owned(),
        };
        // One left by a run that was killed before it could clean up.
        tree.remove();
        cmd::run(
            Command::new("git")
                .arg("-C")
                .arg(root)
                .args(["worktree", "add", "--force", "--detach"])
                .arg(dir)
                .arg(COMMIT),
        )?;
        Ok(tree)
    }

    fn remove(&self) {
        let _ = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["worktree", "remove", "--force"])
            .arg(&self.dir)
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        self.remove();
    }
}
