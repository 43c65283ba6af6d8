//! A network-namespace lab for aliasstat.
//!
//! Everything here needs root: it creates network namespaces joined by veth
//! pairs, mounts a bpffs, runs the `aliasstat` binary inside a namespace and
//! sends traffic between the namespaces. Every resource is an RAII guard, so
//! a failing or panicking test still deletes its namespaces (and with them
//! their veths), stops its daemons and removes its pins.
//!
//! The integration tests (`tests/tests/*`, one folder per suite) and
//! `cargo xtask demo` are built from these pieces. Traffic only ever goes
//! between addresses inside namespaces the lab created.

pub mod aliases;
pub mod background;
pub mod bpffs;
pub mod certs;
pub mod cgroups;
pub mod cmd;
pub mod daemon;
pub mod first_release;
pub mod forward;
pub mod frames;
pub mod grafana;
pub mod harness;
pub mod http;
pub mod interrupt;
pub mod lan;
pub mod link;
pub mod netns;
pub mod poll;
pub mod procnet;
pub mod prometheus;
pub mod rated;
pub mod scratch;
pub mod served;
pub mod snapshot;
pub mod stress;
pub mod traffic;
pub mod units;

pub use bpffs::BpfDir;
pub use daemon::{Daemon, Hook, dump};
pub use link::{Host, Mac, Veth};
pub use netns::Netns;
pub use snapshot::{Count, Dir, OtherKind, Snapshot};

/// An address literal the test wrote itself.
pub fn ip(literal: &str) -> std::net::IpAddr {
    literal.parse().expect("a valid address literal")
}

/// Runs this thread on `cpu` only, so that a series of measurements is not
/// spread over CPUs with different cache contents.
pub fn pin_to(cpu: usize) -> anyhow::Result<()> {
    use anyhow::Context as _;
    anyhow::ensure!(
        cpu < libc::CPU_SETSIZE as usize,
        "CPU {cpu} is out of range (CPU_SETSIZE is {})",
        libc::CPU_SETSIZE
    );
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET stays within it
    // for any cpu below CPU_SETSIZE, checked above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("failed to pin to CPU {cpu}"));
        }
    }
    Ok(())
}

/// Removes what earlier runs that were killed before their guards ran left
/// behind: namespaces and pin directories tagged with a pid that is gone.
pub fn remove_stale() -> anyhow::Result<()> {
    netns::remove_stale()?;
    bpffs::remove_stale()
}

/// Whether `pid` is a live process; resources are tagged with their
/// creator's pid so that a later run can tell what is orphaned.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A name no other lab resource of this or any live process uses:
/// `<pid>-<counter>-<role>`.
fn unique(role: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{role}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The pid a [`unique`] name was made by.
fn owner(name: &str) -> Option<u32> {
    name.split('-').next()?.parse().ok()
}
