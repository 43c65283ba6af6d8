//! cgroup v2 units made by a test, for the per-service counters.
//!
//! PID 1 here is not systemd, so a test makes its own "units": directories
//! named like them (`web.service`) under `<mount>/aliasstat-test-<pid>-<n>/`.
//! `ip netns exec` gives its program a fresh /sys without the host's cgroup
//! mounts, so the hierarchy is also mounted at a directory under /run that
//! the daemon (`--cgroup-root`) and the peers see inside a namespace.
//! Dropping the lab kills whatever is left in its cgroups, removes them and
//! unmounts, also when the test panics.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{Netns, cmd};

/// A private cgroup2 mount with one test directory of units.
#[derive(Debug)]
pub struct CgroupLab {
    mount: PathBuf,
    group: PathBuf,
    units: Vec<PathBuf>,
}

/// Whether this kernel has a cgroup2 hierarchy to mount: the reason to skip
/// when it does not.
pub fn probe() -> Result<()> {
    let text = fs::read_to_string("/proc/filesystems")?;
    if !text.lines().any(|l| l.ends_with("\tcgroup2")) {
        bail!("the kernel has no cgroup2 filesystem");
    }
    Ok(())
}

impl CgroupLab {
    pub fn new() -> Result<Self> {
        let name = format!("aliasstat-test-{}", crate::unique("cg"));
        let mount = PathBuf::from("/run").join(&name);
        fs::create_dir_all(&mount)?;
        cmd::run(
            Command::new("mount")
                .args(["-t", "cgroup2", "none"])
                .arg(&mount),
        )?;
        let group = mount.join(&name);
        let lab = Self {
            mount,
            group,
            units: Vec::new(),
        };
        fs::create_dir(&lab.group).with_context(|| format!("mkdir {}", lab.group.display()))?;
        Ok(lab)
    }

    /// The mount, for the daemon's `--cgroup-root`.
    pub fn root(&self) -> &Path {
        &self.mount
    }

    /// A new unit, e.g. `web.service`; returns its directory.
    pub fn unit(&mut self, name: &str) -> Result<PathBuf> {
        let dir = self.group.join(name);
        fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        self.units.push(dir.clone());
        Ok(dir)
    }

    /// The cgroup path of `unit` as the daemon names it.
    pub fn path_of(&self, unit: &str) -> String {
        let rel = self
            .group
            .strip_prefix(&self.mount)
            .expect("under the mount");
        format!("/{}/{unit}", rel.display())
    }
}

impl Drop for CgroupLab {
    fn drop(&mut self) {
        for dir in self.units.iter().chain([&self.group]) {
            // Kills what is left (5.14+), then waits for it to be gone.
            let _ = fs::write(dir.join("cgroup.kill"), "1");
            let deadline = Instant::now() + Duration::from_secs(5);
            while fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty())
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(10));
            }
        }
        for dir in self.units.iter().rev().chain([&self.group]) {
            if let Err(e) = fs::remove_dir(dir) {
                eprintln!("warning: failed to remove cgroup {}: {e}", dir.display());
            }
        }
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = fs::remove_dir(&self.mount);
    }
}

/// A `svcpeer` process in a unit, inside a namespace; killed when dropped.
pub struct Peer {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    /// Starts `svcpeer --cgroup <unit> <args…>` in `ns` and waits for its
    /// first line (`ready`, or the result of a one-shot mode). `bin` is
    /// [`crate::svcpeer!`], which only tests can expand.
    pub fn start(bin: &str, ns: &Netns, unit: &Path, args: &[&str]) -> Result<(Self, String)> {
        let mut cmd = ns.exec(bin);
        cmd.arg("--cgroup").arg(unit).args(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd::die_with_parent(&mut cmd);
        let shown = cmd::show(&cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("failed to start `{shown}`"))?;
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut peer = Self { child, stdout };
        let line = peer.line().with_context(|| format!("`{shown}`"))?;
        Ok((peer, line))
    }

    /// The next line the peer prints.
    pub fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            bail!("svcpeer exited ({status}) without printing a line");
        }
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
