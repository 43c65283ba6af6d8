//! Network namespaces that delete themselves.

use std::{fs::File, os::fd::AsRawFd, process::Command, thread};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Every lab namespace is named `aslab-<pid>-<counter>-<role>`.
const PREFIX: &str = "aslab-";
/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// A named network namespace (`ip netns add`). Dropping it deletes it, and
/// the kernel then destroys its veths with it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace; `role` ("cli", "srv") only makes names readable.
    pub fn new(role: &str) -> Result<Self> {
        let name = format!("{PREFIX}{}", crate::unique(role));
        cmd::run(Command::new("ip").args(["netns", "add", &name]))?;
        Ok(Self { name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip netns exec <ns> <program>`, for the caller to add arguments to.
    /// The program also gets a private mount namespace with this network
    /// namespace's /sys.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Sets `net.*` sysctl `key` (dotted) inside this namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.enter(|| std::fs::write(&path, value))?
            .with_context(|| format!("failed to set {key}={value} in netns {}", self.name))
    }

    /// No IPv6 on interfaces created from now on (`default`) nor on those
    /// already here, `lo` among them (`all`).
    pub fn disable_ipv6(&self) -> Result<()> {
        self.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        self.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
    }

    /// Runs `f` on a thread that has joined this namespace with `setns(2)`.
    ///
    /// Sockets that `f` creates belong to this namespace for their whole
    /// life, whichever thread uses them later; `/proc/thread-self/net/*`
    /// read inside `f` shows this namespace's view. A panic in `f` goes on
    /// in the caller.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        enter(&self.name, f)
    }
}

/// [`Netns::enter`] by the namespace's name, for threads that outlive a
/// borrow of it (a port forward's connections).
pub fn enter<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = format!("{NETNS_DIR}/{name}");
    let file = File::open(&path).with_context(|| format!("failed to open {path}"))?;
    thread::scope(|s| {
        let joined = s
            .spawn(|| {
                // SAFETY: a valid namespace fd; only this thread, which
                // ends with the scope, changes namespace.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("setns into {path}"));
                }
                Ok(f())
            })
            .join();
        match joined {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("lab: leaking netns {}: {e:#}", self.name);
        }
    }
}

/// Deletes lab namespaces whose creating process is gone.
pub(crate) fn remove_stale() -> Result<()> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context(format!("failed to list {NETNS_DIR}")),
    };
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.strip_prefix(PREFIX).and_then(crate::owner) else {
            continue;
        };
        if !crate::alive(owner) {
            cmd::run(Command::new("ip").args(["netns", "del", &name]))?;
        }
    }
    Ok(())
}

/// Fails unless `ip` can manage namespaces here, saying what is missing.
pub fn probe() -> Result<()> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => bail!("iproute2's `ip` is not available: {e}"),
    }
}
