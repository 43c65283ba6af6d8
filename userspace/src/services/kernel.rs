//! The service programs in the kernel: told which namespace to count,
//! attached to the cgroup root, and their map read back.

use std::{fs::File, io, os::fd::AsRawFd as _, path::Path};

use aya::{
    Ebpf,
    maps::{Array, MapData, MapError, PerCpuHashMap},
    programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError},
};
use common::{
    Counters, ServiceKey,
    names::{CGROUP_EGRESS, CGROUP_INGRESS, SERVICE_NETNS, SERVICES},
};

use crate::bpf::load::{self, LoadError};

/// `SO_NETNS_COOKIE` from the uapi (Linux 5.14+); libc does not have it.
const SO_NETNS_COOKIE: libc::c_int = 71;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "failed to read this network namespace's cookie (SO_NETNS_COOKIE needs Linux 5.14+); turn services off with --services off"
    )]
    Cookie(#[source] io::Error),
    #[error("failed to open the cgroup root `{}`; pass the cgroup2 mount with --cgroup-root", path.display())]
    Root {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("failed to attach `{name}` to the cgroup root `{}`", path.display())]
    Attach {
        name: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: ProgramError,
    },
    #[error("failed to use map `{name}`")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
}

/// The cookie of the calling thread's network namespace.
pub fn netns_cookie() -> Result<u64, KernelError> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")
        .or_else(|_| std::net::UdpSocket::bind("[::]:0"))
        .map_err(KernelError::Cookie)?;
    let mut cookie = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: an open socket and a buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(KernelError::Cookie(io::Error::last_os_error()));
    }
    Ok(cookie)
}

/// Tells the programs to count this namespace, attaches both to `root`
/// (beside any other program there: systemd's IPAccounting, another
/// aliasstat in another namespace), and hands back their map. The links
/// live in `ebpf`: they are dropped, and the programs detached, with it.
pub fn attach(
    ebpf: &mut Ebpf,
    root: &Path,
) -> Result<PerCpuHashMap<MapData, ServiceKey, Counters>, KernelError> {
    let map_err = |name| move |source| KernelError::Map { name, source };
    let cookie = netns_cookie()?;
    let netns = ebpf.map_mut(SERVICE_NETNS).ok_or(LoadError::MissingMap {
        name: SERVICE_NETNS,
    })?;
    Array::<_, u64>::try_from(netns)
        .and_then(|mut a| a.set(0, cookie, 0))
        .map_err(map_err(SERVICE_NETNS))?;
    let dir = File::open(root).map_err(|source| KernelError::Root {
        path: root.to_owned(),
        source,
    })?;
    for (name, side) in [
        (CGROUP_INGRESS, CgroupSkbAttachType::Ingress),
        (CGROUP_EGRESS, CgroupSkbAttachType::Egress),
    ] {
        let prog: &mut CgroupSkb = load::program(ebpf, name)?;
        // A bpf_link (5.7+) takes no flags and always sits beside the
        // others; `AllowMultiple` makes link_create fail with EINVAL.
        prog.attach(&dir, side, CgroupAttachMode::Single)
            .map_err(|source| KernelError::Attach {
                name,
                path: root.to_owned(),
                source,
            })?;
    }
    let map = ebpf
        .take_map(SERVICES)
        .ok_or(LoadError::MissingMap { name: SERVICES })?;
    PerCpuHashMap::try_from(map).map_err(map_err(SERVICES))
}

/// Every entry of the map, summed over CPUs.
pub fn read(
    map: &PerCpuHashMap<MapData, ServiceKey, Counters>,
) -> Result<Vec<(ServiceKey, Counters)>, KernelError> {
    map.iter()
        .map(|entry| {
            entry
                .map(|(key, per_cpu)| (key, per_cpu.iter().copied().sum()))
                .map_err(|source| KernelError::Map {
                    name: SERVICES,
                    source,
                })
        })
        .collect()
}
