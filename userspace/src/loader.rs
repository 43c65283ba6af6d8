//! Loading the embedded object, pinning its maps, attaching its programs.

use std::{
    io,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{MapData, MapError, MapInfo, PerCpuHashMap, PerCpuValues},
    programs::{ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode, tc},
    util::KernelVersion,
};
use common::{
    Counters, Direction, OtherKey, OtherKind,
    names::{ADDRESSES, OTHER, TC_EGRESS, TC_INGRESS, XDP_INGRESS},
};
use log::warn;

/// The programs, built by build.rs for the BPF target.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/aliasstat"));

/// `statfs(2)` magic of a bpffs.
const BPF_FS_MAGIC: libc::c_long = 0xcafe_4a11;
/// `BPF_NOEXIST` from the uapi: insert only if the key is new.
const BPF_NOEXIST: u64 = 1;

/// Where ingress is counted. Egress is always counted on TC: XDP has no
/// egress hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Hook {
    Tc,
    Xdp,
}

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
    #[error("interface `{iface}` does not exist")]
    UnknownInterface { iface: String },
    #[error("failed to attach `{program}` to interface `{iface}`")]
    Attach {
        iface: String,
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("failed to add a clsact qdisc to interface `{iface}`")]
    Clsact {
        iface: String,
        #[source]
        source: tc::TcError,
    },
}

/// One program attached to one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub iface: String,
    /// The index at attach time: a re-created interface gets a new one.
    pub ifindex: u32,
    /// `tc` or `xdp`.
    pub hook: &'static str,
    pub direction: Direction,
}

/// Loads the object with its maps pinned under `bpffs`, reusing maps that
/// are already pinned there so that counts survive a restart.
pub fn load(bpffs: &Path, map_capacity: u32) -> Result<Ebpf, LoadError> {
    std::fs::create_dir_all(bpffs).map_err(|source| LoadError::PinDir {
        path: bpffs.to_owned(),
        source,
    })?;
    if !is_bpffs(bpffs) {
        return Err(LoadError::NotBpffs {
            path: bpffs.to_owned(),
        });
    }
    warn_on_capacity_mismatch(bpffs, map_capacity);
    EbpfLoader::new()
        .default_map_pin_directory(bpffs)
        .map_max_entries(ADDRESSES, map_capacity)
        .load(OBJECT)
        .map_err(LoadError::Object)
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a statfs buffer of the right type.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut st) };
    rc == 0 && st.f_type as libc::c_long == BPF_FS_MAGIC
}

/// A pinned map keeps the capacity it was created with; say so rather than
/// silently ignoring `--map-capacity`.
fn warn_on_capacity_mismatch(bpffs: &Path, wanted: u32) {
    let path = bpffs.join(ADDRESSES);
    if let Ok(info) = MapInfo::from_pin(&path)
        && info.max_entries() != wanted
    {
        warn!(
            "{} is already pinned with capacity {}; keeping it and its counts (remove the pin to apply --map-capacity {wanted})",
            path.display(),
            info.max_entries()
        );
    }
}

/// The capacity the address map was created with: a pinned map keeps its
/// own, whatever --map-capacity says now.
pub fn address_capacity(ebpf: &Ebpf) -> Result<u32, LoadError> {
    let map = ebpf
        .map(ADDRESSES)
        .ok_or(LoadError::MissingMap { name: ADDRESSES })?;
    let info = match map {
        aya::maps::Map::PerCpuHashMap(data) => data.info(),
        _ => return Err(LoadError::MissingMap { name: ADDRESSES }),
    };
    info.map(|i| i.max_entries())
        .map_err(|source| LoadError::Map {
            name: ADDRESSES,
            source,
        })
}

/// Attaches counting to `iface`: ingress on `hook`, egress on TC.
pub fn attach(ebpf: &mut Ebpf, iface: &str, hook: Hook) -> Result<Vec<Attachment>, LoadError> {
    let ifindex = self::index(iface)?;
    create_other_buckets(ebpf, ifindex)?;
    let mut done = Vec::with_capacity(2);
    match hook {
        Hook::Tc => {
            attach_tc(ebpf, iface, TC_INGRESS, TcAttachType::Ingress)?;
            done.push(Attachment {
                iface: iface.to_owned(),
                ifindex,
                hook: "tc",
                direction: Direction::Rx,
            });
        }
        Hook::Xdp => {
            let prog: &mut Xdp = program(ebpf, XDP_INGRESS)?;
            prog.attach_to_if_index(ifindex, XdpMode::Default)
                .map_err(|source| LoadError::Attach {
                    iface: iface.to_owned(),
                    program: XDP_INGRESS,
                    source,
                })?;
            done.push(Attachment {
                iface: iface.to_owned(),
                ifindex,
                hook: "xdp",
                direction: Direction::Rx,
            });
        }
    }
    attach_tc(ebpf, iface, TC_EGRESS, TcAttachType::Egress)?;
    done.push(Attachment {
        iface: iface.to_owned(),
        ifindex,
        hook: "tc",
        direction: Direction::Tx,
    });
    Ok(done)
}

fn index(iface: &str) -> Result<u32, LoadError> {
    crate::interfaces::index(iface).ok_or_else(|| LoadError::UnknownInterface {
        iface: iface.to_owned(),
    })
}

fn attach_tc(
    ebpf: &mut Ebpf,
    iface: &str,
    name: &'static str,
    attach_type: TcAttachType,
) -> Result<(), LoadError> {
    // tcx (6.6+) needs no qdisc; the netlink fallback needs clsact.
    let has_tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    if !has_tcx {
        match tc::qdisc_add_clsact(iface) {
            Ok(()) => {}
            Err(tc::TcError::IoError(e)) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(LoadError::Clsact {
                    iface: iface.to_owned(),
                    source,
                });
            }
        }
    }
    let prog: &mut SchedClassifier = program(ebpf, name)?;
    prog.attach(iface, attach_type)
        .map_err(|source| LoadError::Attach {
            iface: iface.to_owned(),
            program: name,
            source,
        })?;
    Ok(())
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
            .map_err(|source| LoadError::Program { name, source })?;
    }
    Ok(prog)
}

/// The two program types aliasstat loads, behind one interface so that
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
fn create_other_buckets(ebpf: &mut Ebpf, ifindex: u32) -> Result<(), LoadError> {
    let map_err = |source| LoadError::Map {
        name: OTHER,
        source,
    };
    let map = ebpf
        .map_mut(OTHER)
        .ok_or(LoadError::MissingMap { name: OTHER })?;
    let mut other: PerCpuHashMap<&mut MapData, OtherKey, Counters> =
        PerCpuHashMap::try_from(map).map_err(map_err)?;
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| map_err(MapError::IoError(e)))?;
    for direction in Direction::ALL {
        for kind in OtherKind::ALL {
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
