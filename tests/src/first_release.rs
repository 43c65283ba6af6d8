//! Older builds of aliasstat, built from git for the upgrade tests: the
//! binaries an upgrade really starts from. [`FIRST`] is the first release
//! (map layout v1); [`SHARED_PEERS`] the last commit whose programs keep
//! both families' peers in one table.
//!
//! Each is built once in a temporary git worktree under
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

/// An older build: its commit, and the variable that can name a binary
/// of it instead.
pub struct Old {
    pub commit: &'static str,
    env: &'static str,
}

/// The first release.
pub const FIRST: Old = Old {
    commit: "d04eda6",
    env: "ALIASSTAT_FIRST_RELEASE_BIN",
};

/// The last commit with one peer table (`PEERS`) for both families.
pub const SHARED_PEERS: Old = Old {
    commit: "93cbd90",
    env: "ALIASSTAT_SHARED_PEERS_BIN",
};

impl Old {
    /// Its binary: `$<env>` if set, else the cached build, else built now
    /// (minutes, the first time). `Ok(Err)` says why it cannot be built
    /// here, e.g. a shallow clone without the commit.
    pub fn binary(&self) -> Result<Result<PathBuf, String>> {
        binary(self.commit, self.env)
    }
}

fn binary(commit: &str, env: &str) -> Result<Result<PathBuf, String>> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "{env}={} is not a file", path.display());
        return Ok(Ok(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the lab crate lives in the workspace")?
        .to_owned();
    let cache = root.join("target/first-release");
    let binary = cache.join(format!("aliasstat-{commit}"));
    if binary.is_file() {
        return Ok(Ok(binary));
    }
    let has_commit = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status()
        .is_ok_and(|s| s.success());
    if !has_commit {
        return Ok(Err(format!(
            "commit {commit} is not in this clone; `git fetch --unshallow` brings it"
        )));
    }
    let linker = root.join("target/tools/bin/bpf-linker");
    ensure!(
        linker.is_file(),
        "no bpf-linker at {}: run `cargo xtask setup`",
        linker.display()
    );
    let tree = Worktree::add(&root, &cache.join("src"), commit)?;
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .current_dir(&tree.dir)
        .args(["build", "-p", "aliasstat", "--bin", "aliasstat"])
        .env("CARGO_TARGET_DIR", cache.join("target"))
        // The old tree names the linker relative to itself, where there is
        // none: point it at this workspace's.
        .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", &linker);
    cmd::run(&mut build).with_context(|| format!("building aliasstat at {commit}"))?;
    let built = cache.join("target/debug/aliasstat");
    let partial = binary.with_extension("partial");
    fs::copy(&built, &partial).with_context(|| format!("copying {}", built.display()))?;
    fs::rename(&partial, &binary)?;
    Ok(Ok(binary))
}

/// A detached git worktree at a commit, removed on drop, also when the
/// build fails or panics.
struct Worktree {
    root: PathBuf,
    dir: PathBuf,
}

impl Worktree {
    fn add(root: &Path, dir: &Path, commit: &str) -> Result<Self> {
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
                .arg(commit),
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
