//! Loading the embedded object into the kernel with its maps pinned under
//! the bpffs (reusing maps already pinned there), loading its programs on
//! first use, and creating the map entries the kernel side never inserts.
//! Attaching the programs is [`crate::bpf::attach`]'s job.

use std::{
    io,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{MapData, MapError, MapInfo, PerCpuHashMap, PerCpuValues},
    programs::{CgroupSkb, ProgramError, SchedClassifier, Xdp},
};
use common::{
    Counters, Direction, OtherKey, OtherKind,
    names::{
        ADDRESSES_V4, ADDRESSES_V6, DEFAULT_PEER_CAPACITY, DEFAULT_PEER_V4_PREFIX,
        DEFAULT_PEER_V6_PREFIX, OTHER, PEER_V4_MASK, PEER_V4_PREFIX, PEER_V6_MASK, PEER_V6_PREFIX,
        PEERS, PEERS_MISSED, PEERS_ON, PEERS_V4, SERVICE_NETNS,
    },
    peer::prefix_mask,
};
use log::{info, warn};

use crate::bpf::{
    CpusError, cpus,
    pins::{self, LayoutError},
};

/// The address maps, IPv4 then IPv6: each is created with
/// `--map-capacity` entries.
pub const ADDRESS_MAPS: [&str; 2] = [ADDRESSES_V4, ADDRESSES_V6];

/// The programs, built by build.rs for the BPF target.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/aliasstat"));

/// `statfs(2)` magic of a bpffs.
const BPF_FS_MAGIC: libc::c_long = 0xcafe_4a11;
/// `BPF_NOEXIST` from the uapi: insert only if the key is new.
const BPF_NOEXIST: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("failed to create the pin directory `{}`", path.display())]
    PinDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{}` is not on a bpffs, so maps pinned there would not survive; mount one with `mount -t bpf bpf {}` or pass --bpffs DIR on a bpffs",
        path.display(), path.display()
    )]
    NotBpffs { path: PathBuf },
    #[error(
        "failed to load the eBPF object (needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, or root)"
    )]
    Object(#[source] EbpfError),
    #[error(
        "the kernel refused to load program `{name}`: {hint}; run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (as dist/aliasstat.service does)"
    )]
    Privilege {
        name: &'static str,
        hint: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("program `{name}` is missing from the eBPF object")]
    MissingProgram { name: &'static str },
    #[error("failed to load program `{name}` into the kernel")]
    Program {
        name: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("map `{name}` is missing from the eBPF object")]
    MissingMap { name: &'static str },
    #[error("failed to use map `{name}`")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Cpus(#[from] CpusError),
}

/// How the programs track peers (`--peers`, `--peer-capacity`,
/// `--peer-prefix-v4`, `--peer-prefix-v6`), set before verification.
#[derive(Clone, Copy, Debug)]
pub struct PeerTracking {
    pub on: bool,
    pub capacity: u32,
    pub v4_prefix: u8,
    pub v6_prefix: u8,
}

impl PeerTracking {
    /// `aliasstat run`'s defaults.
    pub const DEFAULT: Self = Self {
        on: true,
        capacity: DEFAULT_PEER_CAPACITY,
        v4_prefix: DEFAULT_PEER_V4_PREFIX,
        v6_prefix: DEFAULT_PEER_V6_PREFIX,
    };
}

/// [`load_with`] the default peer tracking, and service programs that
/// count no namespace.
pub fn load(bpffs: &Path, map_capacity: u32) -> Result<Ebpf, LoadError> {
    load_with(bpffs, map_capacity, PeerTracking::DEFAULT, 0)
}

/// Loads the object with its maps pinned under `bpffs`, reusing maps of
/// this layout that are already pinned there so that counts survive a
/// restart. The service programs count the namespace whose cookie is
/// `service_netns` (`services::kernel::netns_cookie`); 0 counts none.
pub fn load_with(
    bpffs: &Path,
    map_capacity: u32,
    peers: PeerTracking,
    service_netns: u64,
) -> Result<Ebpf, LoadError> {
    std::fs::create_dir_all(bpffs).map_err(|source| LoadError::PinDir {
        path: bpffs.to_owned(),
        source,
    })?;
    if !is_bpffs(bpffs) {
        return Err(LoadError::NotBpffs {
            path: bpffs.to_owned(),
        });
    }
    let layouts = pins::layouts(bpffs)?;
    let maps = pins::maps_dir(bpffs, pins::LAYOUT_VERSION);
    std::fs::create_dir_all(&maps).map_err(|source| LoadError::PinDir {
        path: maps.clone(),
        source,
    })?;
    if let Some(older) = layouts.carried.last() {
        info!(
            "maps of layout v{older} under {} are kept as carried-over counts; new counts go to layout v{}",
            bpffs.display(),
            pins::LAYOUT_VERSION
        );
    }
    for name in ADDRESS_MAPS {
        warn_on_capacity_mismatch(&maps, name, map_capacity, "--map-capacity");
    }
    for name in [PEERS_V4, PEERS] {
        warn_on_capacity_mismatch(&maps, name, peers.capacity, "--peer-capacity");
    }
    let v4_mask = prefix_mask(peers.v4_prefix, 32);
    let v6_mask = prefix_mask(peers.v6_prefix, 128);
    let mut loader = EbpfLoader::new();
    loader.default_map_pin_directory(&maps);
    for name in ADDRESS_MAPS {
        loader.map_max_entries(name, map_capacity);
    }
    loader
        .map_max_entries(PEERS_V4, peers.capacity)
        .map_max_entries(PEERS, peers.capacity)
        // One not-recorded counter per local address at most.
        .map_max_entries(PEERS_MISSED, map_capacity)
        .override_global(PEERS_ON, &u8::from(peers.on), true)
        .override_global(PEER_V4_MASK, &v4_mask, true)
        .override_global(PEER_V6_MASK, &v6_mask, true)
        .override_global(PEER_V4_PREFIX, &peers.v4_prefix.min(32), true)
        .override_global(PEER_V6_PREFIX, &peers.v6_prefix.min(128), true)
        .override_global(SERVICE_NETNS, &service_netns, true)
        .load(OBJECT)
        .map_err(LoadError::Object)
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain old data, for which all zeroes is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a statfs buffer of the right type.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), std::ptr::from_mut(&mut st)) };
    rc == 0 && st.f_type as libc::c_long == BPF_FS_MAGIC
}

/// A pinned map keeps the capacity it was created with; say so rather than
/// silently ignoring the `flag` that sizes it.
fn warn_on_capacity_mismatch(maps: &Path, name: &str, wanted: u32, flag: &str) {
    let path = maps.join(name);
    if let Ok(info) = MapInfo::from_pin(&path)
        && info.max_entries() != wanted
    {
        warn!(
            "{} is already pinned with capacity {}; keeping it and its counts (remove the pin to apply {flag} {wanted})",
            path.display(),
            info.max_entries()
        );
    }
}

/// The capacity each address map was created with, in [`ADDRESS_MAPS`]
/// order: a pinned map keeps its own, whatever --map-capacity says now.
pub fn address_capacity(ebpf: &Ebpf) -> Result<[u32; 2], LoadError> {
    let capacity = |name: &'static str| {
        let info = match ebpf.map(name) {
            Some(aya::maps::Map::PerCpuHashMap(data)) => data.info(),
            _ => return Err(LoadError::MissingMap { name }),
        };
        info.map(|i| i.max_entries())
            .map_err(|source| LoadError::Map { name, source })
    };
    Ok([capacity(ADDRESS_MAPS[0])?, capacity(ADDRESS_MAPS[1])?])
}

/// The program `name`, loaded into the kernel on first use.
pub fn program<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, LoadError>
where
    P: Loadable + 'a,
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let prog: &mut P = ebpf
        .program_mut(name)
        .ok_or(LoadError::MissingProgram { name })?
        .try_into()
        .map_err(|source| LoadError::Program { name, source })?;
    if !prog.is_loaded() {
        prog.load_once()
            .map_err(|source| program_error(name, source))?;
    }
    Ok(prog)
}

/// The program types aliasstat loads, behind one interface so that
/// [`program`] loads either on first use.
pub trait Loadable {
    fn is_loaded(&self) -> bool;
    fn load_once(&mut self) -> Result<(), ProgramError>;
}

impl Loadable for SchedClassifier {
    fn is_loaded(&self) -> bool {
        self.fd().is_ok()
    }
    fn load_once(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

impl Loadable for CgroupSkb {
    fn is_loaded(&self) -> bool {
        self.fd().is_ok()
    }
    fn load_once(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

impl Loadable for Xdp {
    fn is_loaded(&self) -> bool {
        self.fd().is_ok()
    }
    fn load_once(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

/// Creates zeroed `non_ip` and `overflow` entries for `ifindex`, keeping
/// any that already hold counts, so the kernel side never needs to insert.
pub fn create_other_buckets(ebpf: &mut Ebpf, ifindex: u32) -> Result<(), LoadError> {
    let map_err = |source| LoadError::Map {
        name: OTHER,
        source,
    };
    let map = ebpf
        .map_mut(OTHER)
        .ok_or(LoadError::MissingMap { name: OTHER })?;
    let mut other: PerCpuHashMap<&mut MapData, OtherKey, Counters> =
        PerCpuHashMap::try_from(map).map_err(map_err)?;
    let cpus = cpus()?;
    for direction in Direction::ALL {
        for kind in OtherKind::KERNEL {
            let zeros = PerCpuValues::try_from(vec![Counters::default(); cpus])
                .map_err(|e| map_err(MapError::IoError(e)))?;
            let key = OtherKey::new(ifindex, direction, kind);
            match other.insert(key, zeros, BPF_NOEXIST) {
                Ok(()) => {}
                Err(MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
    }
    Ok(())
}

/// Names the missing capability when the kernel refused a program for lack
/// of privilege, rather than showing only EPERM or the verifier's log.
fn program_error(name: &'static str, source: ProgramError) -> LoadError {
    let hint = match &source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => match io_error.raw_os_error() {
            Some(libc::EPERM) => Some("loading TC and XDP programs needs CAP_NET_ADMIN"),
            Some(libc::EACCES) if verifier_log.to_string().contains("!root") => {
                Some("the verifier allows its packet pointer arithmetic only with CAP_PERFMON")
            }
            _ => None,
        },
        _ => None,
    };
    match hint {
        Some(hint) => LoadError::Privilege { name, hint, source },
        None => LoadError::Program { name, source },
    }
}
