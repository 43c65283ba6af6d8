//! The service programs in the kernel: which namespace they count (set at
//! load, see [`crate::bpf::load::load_with`]), attached to the cgroup root,
//! and their maps read back.

use std::{fs::File, io, os::fd::AsRawFd as _, path::Path};

use aya::{
    Ebpf,
    maps::{MapData, MapError, PerCpuHashMap},
    programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError},
};
use common::{
    Counters, Service4Key, Service6Key, ServiceCell,
    names::{CGROUP_EGRESS, CGROUP_INGRESS, SERVICES_V4, SERVICES_V6},
};

use crate::bpf::load::{self, LoadError};

/// The service maps, IPv4 then IPv6, as [`ServiceMaps::read`] counts
/// their entries.
pub const SERVICE_MAPS: [&str; 2] = [SERVICES_V4, SERVICES_V6];

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

/// The cookie of the calling thread's network namespace: what the service
/// programs are loaded to count.
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

/// Attaches both programs to `root` (beside any other program there:
/// systemd's IPAccounting, another aliasstat in another namespace), and
/// hands back their maps. The links live in `ebpf`: they are dropped, and
/// the programs detached, with it, so a restarted daemon always attaches
/// programs loaded with its own namespace's cookie.
pub fn attach(ebpf: &mut Ebpf, root: &Path) -> Result<ServiceMaps, KernelError> {
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
    Ok(ServiceMaps {
        v4: take(ebpf, SERVICE_MAPS[0])?,
        v6: take(ebpf, SERVICE_MAPS[1])?,
    })
}

fn take<K: aya::Pod>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<PerCpuHashMap<MapData, K, Counters>, KernelError> {
    let map = ebpf.take_map(name).ok_or(LoadError::MissingMap { name })?;
    PerCpuHashMap::try_from(map).map_err(|source| KernelError::Map { name, source })
}

/// Every (cgroup, interface, direction, address) with its counts.
pub type Cells = Vec<(ServiceCell, Counters)>;

/// The service maps, one per family.
pub struct ServiceMaps {
    v4: PerCpuHashMap<MapData, Service4Key, Counters>,
    v6: PerCpuHashMap<MapData, Service6Key, Counters>,
}

impl ServiceMaps {
    /// Every entry of both maps, summed over CPUs, and the entries of
    /// each, IPv4 then IPv6.
    pub fn read(&self) -> Result<(Cells, [usize; 2]), KernelError> {
        let mut cells = entries(&self.v4, SERVICE_MAPS[0])?;
        let v4 = cells.len();
        cells.extend(entries(&self.v6, SERVICE_MAPS[1])?);
        let v6 = cells.len() - v4;
        Ok((cells, [v4, v6]))
    }
}

fn entries<K: aya::Pod + Into<ServiceCell>>(
    map: &PerCpuHashMap<MapData, K, Counters>,
    name: &'static str,
) -> Result<Vec<(ServiceCell, Counters)>, KernelError> {
    map.iter()
        .map(|entry| {
            entry
                .map(|(key, per_cpu)| (key.into(), per_cpu.iter().copied().sum()))
                .map_err(|source| KernelError::Map { name, source })
        })
        .collect()
}
