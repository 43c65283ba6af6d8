//! Keeping the programs attached to the interfaces the operator named.
//!
//! Before tcx (Linux 6.6), a TC program needs a clsact qdisc, which is
//! added here too.
//!
//! Each attachment is a bpf_link pinned under `<bpffs>/links/<iface>/<hook>`,
//! so the kernel keeps counting while the daemon is stopped or restarting.
//! On start an existing pin is adopted and its program replaced atomically
//! (`bpf_link_update`): every packet runs either the old or the new program,
//! both writing the same pinned maps, so none is missed or counted twice.
//! [`Attacher::reconcile`] runs at start and on every link change: it waits
//! for interfaces that do not exist yet and re-attaches interfaces that
//! were deleted and created again.

use std::{
    collections::BTreeMap,
    fs, io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    pin::PinError,
    programs::{
        ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, LinkError, PinnedLink},
        tc::{self, SchedClassifierLink, SchedClassifierLinkId},
        xdp::{XdpLink, XdpLinkId},
    },
    util::KernelVersion,
};
use common::{
    Direction,
    names::{TC_EGRESS, TC_INGRESS, XDP_INGRESS},
};
use log::{info, warn};

use crate::{
    bpf::{
        load::{self, LoadError},
        pins,
    },
    inventory::interfaces::Interfaces,
};

/// The kind of kernel hook a program runs on. Ingress is counted on either;
/// egress always on TC, since XDP has no egress hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Hook {
    Tc,
    Xdp,
}

impl Hook {
    /// The name of `--hook`, the `hook` label and the link pins.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tc => "tc",
            Self::Xdp => "xdp",
        }
    }
}

impl serde::Serialize for Hook {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Hook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        [Self::Tc, Self::Xdp]
            .into_iter()
            .find(|h| h.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown hook `{text}`")))
    }
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One program on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub iface: String,
    pub hook: Hook,
    pub direction: Direction,
    /// The interface index it is attached to; `None` while the interface
    /// is missing (not created yet, or deleted).
    pub ifindex: Option<u32>,
}

impl Attachment {
    /// Attached as of the last reconcile, which runs on every link event:
    /// a deleted interface takes its links with it and is seen then, so
    /// scrapes and `/healthz` need no system call of their own.
    pub fn is_attached(&self) -> bool {
        self.ifindex.is_some()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("failed to attach `{program}` to interface `{iface}`")]
    Attach {
        iface: String,
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("failed to pin the link of `{program}` on `{iface}` at `{}`", path.display())]
    Pin {
        iface: String,
        program: &'static str,
        path: PathBuf,
        #[source]
        source: PinError,
    },
    #[error("failed to take the link of `{program}` on `{iface}`")]
    Link {
        iface: String,
        program: &'static str,
        #[source]
        source: LinkError,
    },
    #[error("failed to add a clsact qdisc to interface `{iface}`")]
    Clsact {
        iface: String,
        #[source]
        source: tc::TcError,
    },
    #[error("failed to manage link pins under `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A program slot: which program, on which hook, pinned under which name.
struct Slot {
    program: &'static str,
    hook: Hook,
    direction: Direction,
    pin: &'static str,
}

const TC_IN: Slot = Slot {
    program: TC_INGRESS,
    hook: Hook::Tc,
    direction: Direction::Rx,
    pin: "tc-ingress",
};
const XDP_IN: Slot = Slot {
    program: XDP_INGRESS,
    hook: Hook::Xdp,
    direction: Direction::Rx,
    pin: "xdp-ingress",
};
const TC_OUT: Slot = Slot {
    program: TC_EGRESS,
    hook: Hook::Tc,
    direction: Direction::Tx,
    pin: "tc-egress",
};

pub struct Attacher {
    bpffs: PathBuf,
    /// Ingress slot in use, then egress.
    slots: [&'static Slot; 2],
    /// Ingress slot not in use: a pin left there by a run with the other
    /// hook is removed once the new one is attached.
    unused: &'static Slot,
    /// Our own fds on the links, by interface; the pins hold the links too.
    links: BTreeMap<String, Vec<FdLink>>,
    state: BTreeMap<String, Option<u32>>,
    /// Until the first reconcile: interfaces missing then are announced as
    /// awaited even though nothing changed for them.
    first: bool,
    /// Where each reconcile finds the interfaces' indexes now.
    source: Box<dyn Interfaces + Send>,
}

/// An interface whose index changed since the last reconcile.
#[derive(Debug, PartialEq, Eq)]
struct Move {
    iface: String,
    before: Option<u32>,
    now: Option<u32>,
}

impl Attacher {
    pub fn new(
        bpffs: &Path,
        hook: Hook,
        interfaces: &[String],
        source: impl Interfaces + Send + 'static,
    ) -> Self {
        let (ingress, unused) = match hook {
            Hook::Tc => (&TC_IN, &XDP_IN),
            Hook::Xdp => (&XDP_IN, &TC_IN),
        };
        Self {
            bpffs: bpffs.to_owned(),
            slots: [ingress, &TC_OUT],
            unused,
            links: BTreeMap::new(),
            state: interfaces.iter().map(|i| (i.clone(), None)).collect(),
            first: true,
            source: Box::new(source),
        }
    }

    /// Every desired attachment, attached or not.
    pub fn attachments(&self) -> Vec<Attachment> {
        self.state
            .iter()
            .flat_map(|(iface, ifindex)| {
                self.slots.iter().map(move |s| Attachment {
                    iface: iface.clone(),
                    hook: s.hook,
                    direction: s.direction,
                    ifindex: *ifindex,
                })
            })
            .collect()
    }

    /// Brings every named interface that exists to attached, and notes
    /// those that went away. Returns whether anything changed.
    pub fn reconcile(&mut self, ebpf: &mut Ebpf) -> Result<bool, AttachError> {
        let moves = self.moves();
        let changed = !moves.is_empty();
        for Move { iface, before, now } in moves {
            match now {
                None => {
                    self.links.remove(&iface);
                    if before.is_some() {
                        warn!("interface {iface} is gone; waiting for it to come back");
                    } else {
                        warn!("interface {iface} does not exist yet; waiting for it");
                    }
                }
                Some(ifindex) => {
                    load::create_other_buckets(ebpf, ifindex)?;
                    let mut links = Vec::with_capacity(self.slots.len());
                    for slot in self.slots {
                        links.push(self.attach(ebpf, &iface, ifindex, slot)?);
                    }
                    self.remove_pin(&iface, self.unused)?;
                    self.links.insert(iface.clone(), links);
                    info!("attached to {iface} (ifindex {ifindex})");
                }
            }
            self.state.insert(iface, now);
        }
        self.first = false;
        Ok(changed)
    }

    /// The interfaces whose index is not what it was at the last
    /// reconcile: created, deleted, or deleted and created again. On the
    /// first, also those still missing, so that they are announced.
    fn moves(&self) -> Vec<Move> {
        self.state
            .iter()
            .map(|(iface, &before)| Move {
                iface: iface.clone(),
                before,
                now: self.source.index(iface),
            })
            .filter(|m| m.now != m.before || (self.first && m.now.is_none()))
            .collect()
    }

    /// Attaches `slot` on `iface`, adopting a live pinned link if there is
    /// one, and returns our fd on the link, pinned.
    fn attach(
        &self,
        ebpf: &mut Ebpf,
        iface: &str,
        ifindex: u32,
        slot: &Slot,
    ) -> Result<FdLink, AttachError> {
        let path = pins::link(&self.bpffs, iface, slot.pin);
        // Adopt a live pinned link: swap its program in place.
        if let Ok(pinned) = PinnedLink::from_pin(&path) {
            let adopted = match slot.hook {
                Hook::Xdp => adopt_xdp(load::program(ebpf, slot.program)?, pinned),
                Hook::Tc => adopt_tc(load::program(ebpf, slot.program)?, pinned),
            };
            match adopted {
                Ok(link) => return Ok(link),
                // A link whose interface was deleted cannot be updated.
                Err(e) => {
                    info!("replacing stale link pin {}: {e}", path.display());
                    self.remove_file(&path)?;
                }
            }
        }
        let fd = attach_new(ebpf, iface, ifindex, slot)?;
        let dir = path.parent().expect("link pins live in a directory");
        fs::create_dir_all(dir).map_err(|source| AttachError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let pinned = fd.pin(&path).map_err(|source| AttachError::Pin {
            iface: iface.to_owned(),
            program: slot.program,
            path: path.clone(),
            source,
        })?;
        Ok(FdLink::from(pinned))
    }

    fn remove_pin(&self, iface: &str, slot: &Slot) -> Result<(), AttachError> {
        self.remove_file(&pins::link(&self.bpffs, iface, slot.pin))
    }

    fn remove_file(&self, path: &Path) -> Result<(), AttachError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(AttachError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Unpins every link so that they detach when this process exits.
    pub fn unpin_all(&mut self) -> Result<(), AttachError> {
        for iface in self.state.keys() {
            for slot in self.slots {
                self.remove_pin(iface, slot)?;
            }
        }
        self.links.clear();
        Ok(())
    }
}

/// A new link of `slot`'s program on `iface`, not pinned yet.
fn attach_new(
    ebpf: &mut Ebpf,
    iface: &str,
    ifindex: u32,
    slot: &Slot,
) -> Result<FdLink, AttachError> {
    let attach_err = |source| AttachError::Attach {
        iface: iface.to_owned(),
        program: slot.program,
        source,
    };
    let link_err = |source| AttachError::Link {
        iface: iface.to_owned(),
        program: slot.program,
        source,
    };
    match slot.hook {
        Hook::Xdp => {
            let prog: &mut Xdp = load::program(ebpf, slot.program)?;
            let id: XdpLinkId = prog
                .attach_to_if_index(ifindex, XdpMode::Default)
                .map_err(attach_err)?;
            FdLink::try_from(prog.take_link(id).map_err(attach_err)?).map_err(link_err)
        }
        Hook::Tc => {
            let attach_type = match slot.direction {
                Direction::Rx => TcAttachType::Ingress,
                Direction::Tx => TcAttachType::Egress,
            };
            ensure_clsact(iface)?;
            let prog: &mut SchedClassifier = load::program(ebpf, slot.program)?;
            let id: SchedClassifierLinkId = prog.attach(iface, attach_type).map_err(attach_err)?;
            let link = prog.take_link(id).map_err(attach_err)?;
            // The pre-6.6 netlink attachment cannot be pinned: it lives as
            // long as the qdisc, and this process.
            FdLink::try_from(link).map_err(|_| link_err(LinkError::InvalidLink))
        }
    }
}

/// tcx (6.6+) needs no qdisc; the netlink fallback needs clsact.
fn ensure_clsact(iface: &str) -> Result<(), AttachError> {
    let has_tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    if has_tcx {
        return Ok(());
    }
    match tc::qdisc_add_clsact(iface) {
        Ok(()) => Ok(()),
        Err(tc::TcError::IoError(e)) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(AttachError::Clsact {
            iface: iface.to_owned(),
            source,
        }),
    }
}

#[derive(Debug, thiserror::Error)]
enum AdoptError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Program(#[from] ProgramError),
}

/// Points a pinned TC link at `prog`, atomically.
fn adopt_tc(prog: &mut SchedClassifier, pinned: PinnedLink) -> Result<FdLink, AdoptError> {
    let link = SchedClassifierLink::try_from(FdLink::from(pinned))?;
    let id = prog.attach_to_link(link)?;
    Ok(FdLink::try_from(prog.take_link(id)?)?)
}

/// Points a pinned XDP link at `prog`, atomically.
fn adopt_xdp(prog: &mut Xdp, pinned: PinnedLink) -> Result<FdLink, AdoptError> {
    let link = XdpLink::try_from(FdLink::from(pinned))?;
    let id = prog.attach_to_link(link)?;
    Ok(FdLink::try_from(prog.take_link(id)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::interfaces::tests::Fixed;

    fn attacher(source: Fixed) -> Attacher {
        let names = ["eth0", "late", "vb"].map(String::from);
        Attacher::new(Path::new("/nonexistent"), Hook::Tc, &names, source)
    }

    fn mv(iface: &str, before: Option<u32>, now: Option<u32>) -> Move {
        let iface = iface.to_owned();
        Move { iface, before, now }
    }

    #[test]
    fn reconcile_acts_on_interfaces_whose_index_moved() {
        let mut a = attacher(Fixed::new(&[("eth0", 2), ("vb", 7)]));
        // The first reconcile also announces the interface still missing.
        assert_eq!(
            a.moves(),
            [
                mv("eth0", None, Some(2)),
                mv("late", None, None),
                mv("vb", None, Some(7))
            ]
        );
        a.first = false;
        a.state.insert("eth0".into(), Some(2));
        a.state.insert("vb".into(), Some(7));
        assert_eq!(a.moves(), []);
        // vb deleted and created again under a new index; late appears.
        a.source = Box::new(Fixed::new(&[("eth0", 2), ("late", 9), ("vb", 8)]));
        assert_eq!(
            a.moves(),
            [mv("late", None, Some(9)), mv("vb", Some(7), Some(8))]
        );
        a.source = Box::new(Fixed::new(&[("late", 9), ("vb", 8)]));
        a.state.insert("late".into(), Some(9));
        a.state.insert("vb".into(), Some(8));
        assert_eq!(a.moves(), [mv("eth0", Some(2), None)]);
    }
}
