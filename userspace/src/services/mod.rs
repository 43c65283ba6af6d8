//! Which service uses which address: per local address and per cgroup v2
//! (systemd unit), what was delivered to its sockets and sent from them,
//! and what arrived that no socket took.
//!
//! `kernel` attaches the cgroup_skb programs to the cgroup root and reads
//! their map, `cgroups` finds the cgroup2 mount and names cgroup ids,
//! `report` joins both with the address counters and the inventory, and
//! `series` bounds what the exporter makes of it, and `drift` holds it
//! against the services the alias file documents.

pub mod cgroups;
pub mod drift;
pub mod kernel;
pub mod report;
pub mod series;

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
    path::PathBuf,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use common::{Counters, Direction};
use log::info;

pub use self::report::{AddressServices, Service, ServicesDoc, Unserved};
use self::{
    cgroups::{CgroupError, Names},
    kernel::{KernelError, ServiceMaps},
    report::Inputs,
};
use crate::{
    bpf::counters::{CountersError, Snapshot},
    inventory::{Config, HostTable},
};

#[derive(Debug, thiserror::Error)]
pub enum ServicesError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Counters(#[from] CountersError),
}

/// Per-service counting, attached and running.
pub struct Services {
    maps: ServiceMaps,
    names: Mutex<Names>,
    baseline: HashMap<(u32, IpAddr), Counters>,
    series: Mutex<series::Budget>,
    /// Entries of each map at the last [`Services::report`], for their
    /// fill.
    entries: [AtomicUsize; 2],
}

impl Services {
    /// Attaches to `root` (the cgroup2 mount when `None`). `before` is the
    /// address counters read just before: unserved traffic is counted from
    /// then on.
    pub fn start(
        ebpf: &mut aya::Ebpf,
        root: Option<PathBuf>,
        before: &Snapshot,
        max_series: usize,
    ) -> Result<Self, ServicesError> {
        let root = match root {
            Some(root) => root,
            None => cgroups::find_mount()?,
        };
        let maps = kernel::attach(ebpf, &root)?;
        info!("services: counting per cgroup under {}", root.display());
        let baseline = before
            .addresses
            .iter()
            .filter(|c| c.direction == Direction::Rx)
            .map(|c| ((c.ifindex, c.address), c.counters))
            .collect();
        Ok(Self {
            maps,
            names: Mutex::new(Names::new(root)),
            baseline,
            series: Mutex::new(series::Budget::new(max_series)),
            entries: [AtomicUsize::new(0), AtomicUsize::new(0)],
        })
    }

    /// The matrix now. `counted` must be read before this call, so that a
    /// packet between the two reads shows as delivered, not as unserved.
    pub fn report(
        &self,
        counted: &Snapshot,
        host: &HostTable,
        config: &Config,
        ifindexes: &BTreeSet<u32>,
    ) -> Result<ServicesDoc, ServicesError> {
        let (entries, filled) = self.maps.read()?;
        for (slot, n) in self.entries.iter().zip(filled) {
            slot.store(n, Ordering::Relaxed);
        }
        let ids = entries.iter().map(|(cell, _)| cell.cgroup).collect();
        let names = self
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .resolve(&ids);
        Ok(report::build(&Inputs {
            entries: &entries,
            names: &names,
            counted: &counted.addresses,
            baseline: &self.baseline,
            host,
            config,
            ifindexes,
        }))
    }

    /// The exporter's series of `doc`, within `--max-service-series`.
    pub fn series(&self, doc: &ServicesDoc) -> Vec<series::Series> {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .split(doc)
    }

    /// Entries of each map ([`kernel::SERVICE_MAPS`]) when
    /// [`Services::report`] last read them.
    pub fn entries(&self) -> [usize; 2] {
        self.entries.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    pub fn series_limit(&self) -> usize {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .limit()
    }
}
