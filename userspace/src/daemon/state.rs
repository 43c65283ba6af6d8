//! The running daemon's state, as the HTTP endpoints see it: the counters,
//! the host's addresses, the alias file, what is attached where, and the
//! foreign series budget.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use tokio::sync::watch;

use crate::{
    bpf::{
        attach::Attachment,
        counters::{CounterSource, CountersError, Snapshot},
        memory::{MapBytes, MapMemory},
    },
    foreign::{ForeignBudget, Split},
    history::recorder,
    inventory::{self, Config, HostTable, Row, State},
    peers::Peers,
    services::{Services, ServicesDoc, ServicesError, series::Series},
};

/// The alias file as last loaded, and how the last (re)load went.
#[derive(Clone, Debug)]
pub struct ConfigStatus {
    pub config: Arc<Config>,
    pub last_reload_success: bool,
    pub last_reload: SystemTime,
}

/// Everything the endpoints read. Its fields are private: the daemon's
/// event loop changes them through the methods below, and every reader
/// gets a consistent copy, so no other module ever takes these locks.
pub struct Live {
    counters: Box<dyn CounterSource + Send + Sync>,
    host: watch::Receiver<Arc<HostTable>>,
    config: watch::Receiver<ConfigStatus>,
    /// Every desired attachment, updated as interfaces come and go.
    attachments: RwLock<Vec<Attachment>>,
    /// Capacity of each address map, as created, in
    /// [`crate::bpf::load::ADDRESS_MAPS`] order.
    address_capacity: [u32; 2],
    memory: MapMemory,
    foreign: Mutex<ForeignBudget>,
    max_foreign_series: usize,
    peers: Option<Peers>,
    services: Option<Services>,
    /// Failed history writes; `None` without a history (`--no-history`).
    history_write_errors: Option<AtomicU64>,
    history: Option<recorder::Options>,
}

/// What a [`Live`] is made of.
pub struct Parts {
    pub counters: Box<dyn CounterSource + Send + Sync>,
    pub host: watch::Receiver<Arc<HostTable>>,
    pub config: watch::Receiver<ConfigStatus>,
    pub attachments: Vec<Attachment>,
    pub address_capacity: [u32; 2],
    /// Every map of the loaded object; empty where there is no kernel.
    pub memory: MapMemory,
    /// Foreign addresses that get series of their own.
    pub max_foreign_series: usize,
    /// The peer table and record; `None` with `--peers off`.
    pub peers: Option<Peers>,
    /// Per-service counting; `None` when it is off.
    pub services: Option<Services>,
    /// Where and how often the daemon keeps a history (whose failed
    /// writes are counted); `None` with `--no-history`.
    pub history: Option<recorder::Options>,
}

impl Live {
    pub fn new(parts: Parts) -> Self {
        Self {
            counters: parts.counters,
            host: parts.host,
            config: parts.config,
            attachments: RwLock::new(parts.attachments),
            address_capacity: parts.address_capacity,
            memory: parts.memory,
            foreign: Mutex::new(ForeignBudget::new(parts.max_foreign_series)),
            max_foreign_series: parts.max_foreign_series,
            peers: parts.peers,
            services: parts.services,
            history_write_errors: parts.history.is_some().then(AtomicU64::default),
            history: parts.history,
        }
    }

    /// The history's directory and interval, for `/api/v1/history`;
    /// `None` with `--no-history`.
    pub fn history(&self) -> Option<&recorder::Options> {
        self.history.as_ref()
    }

    /// The peer table and record; `None` with `--peers off`.
    pub fn peers(&self) -> Option<&Peers> {
        self.peers.as_ref()
    }

    /// The host's addresses and links as last seen through rtnetlink.
    pub fn host(&self) -> Arc<HostTable> {
        self.host.borrow().clone()
    }

    /// The alias file in use, and how its last (re)load went.
    pub fn config(&self) -> ConfigStatus {
        self.config.borrow().clone()
    }

    pub fn address_capacity(&self) -> [u32; 2] {
        self.address_capacity
    }

    /// The kernel memory of every map now, as the kernel accounts it.
    pub fn map_memory(&self) -> Vec<MapBytes> {
        self.memory.read()
    }

    /// The `--max-foreign-series` limit.
    pub fn max_foreign_series(&self) -> usize {
        self.max_foreign_series
    }

    /// Foreign addresses that have series of their own now.
    pub fn foreign_series(&self) -> usize {
        self.budget().listed()
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, ForeignBudget> {
        self.foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set_attachments(&self, attachments: Vec<Attachment>) {
        *self
            .attachments
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = attachments;
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        self.attachments
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn all_attached(&self) -> bool {
        self.attachments().iter().all(Attachment::is_attached)
    }

    /// Runs `f` on one consistent view: the series budget, locked, and the
    /// counters read while it is held, with the test for foreign addresses.
    /// Scrapes and evictions both go through here, so an eviction never
    /// falls between a read and what is done with it.
    pub fn with_budget<R>(
        &self,
        f: impl FnOnce(&mut ForeignBudget, Snapshot, &dyn Fn(IpAddr) -> bool) -> R,
    ) -> Result<R, CountersError> {
        let mut budget = self.budget();
        let snap = self.counters.snapshot()?;
        let host = self.host();
        let config = self.config().config;
        let is_foreign = |a| inventory::state(&host, &config, a) == State::Foreign;
        Ok(f(&mut budget, snap, &is_foreign))
    }

    /// One read for the exporter: the counters, and which addresses get
    /// series of their own.
    pub fn split(&self) -> Result<(Snapshot, Split), CountersError> {
        self.with_budget(|budget, snap, is_foreign| {
            let split = budget.split(&snap.addresses, is_foreign);
            (snap, split)
        })
    }

    /// The address × service matrix; `None` with `--services off`.
    pub fn services(&self) -> Result<Option<ServicesDoc>, ServicesError> {
        if self.services.is_none() {
            return Ok(None);
        }
        // The address counters first: see `Services::report`.
        self.services_against(&self.counters.snapshot()?)
    }

    /// The matrix against address counters `counted` just read.
    fn services_against(&self, counted: &Snapshot) -> Result<Option<ServicesDoc>, ServicesError> {
        let Some(services) = &self.services else {
            return Ok(None);
        };
        let ifindexes = self
            .attachments()
            .iter()
            .filter_map(|a| a.ifindex)
            .collect();
        services
            .report(counted, &self.host(), &self.config().config, &ifindexes)
            .map(Some)
    }

    /// The exporter's per-service series, bounded, and the matrix they
    /// came from, against the scrape's own read of the address counters
    /// (`counted`, read just before): one read of those maps per scrape,
    /// and unserved taken from the same counts as the address families.
    /// `None` with `--services off`.
    pub fn service_series(
        &self,
        counted: &Snapshot,
    ) -> Result<Option<(Vec<Series>, ServicesDoc)>, ServicesError> {
        let (Some(services), Some(doc)) = (&self.services, self.services_against(counted)?) else {
            return Ok(None);
        };
        Ok(Some((services.series(&doc), doc)))
    }

    /// Entries of the service map at the last read of the matrix; `None`
    /// with `--services off`.
    pub fn service_entries(&self) -> Option<[usize; 2]> {
        self.services.as_ref().map(Services::entries)
    }

    /// One read for the history: the counters, with the host's addresses
    /// and the alias file that name them at this moment.
    pub fn counts_now(&self) -> Result<(Snapshot, Arc<HostTable>, Arc<Config>), CountersError> {
        Ok((self.counters.snapshot()?, self.host(), self.config().config))
    }

    pub fn history_write_failed(&self) {
        if let Some(errors) = &self.history_write_errors {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Failed history writes so far; `None` without a history.
    pub fn history_write_errors(&self) -> Option<u64> {
        self.history_write_errors
            .as_ref()
            .map(|e| e.load(Ordering::Relaxed))
    }

    /// The joined inventory, as `aliasstat aliases` shows it.
    pub fn rows(&self) -> Result<Vec<Row>, CountersError> {
        Ok(self.rows_and_entries()?.0)
    }

    /// The joined inventory and, from the same read, the entries of each
    /// address map, IPv4 then IPv6 (for the web page's "map nearly full").
    pub fn rows_and_entries(&self) -> Result<(Vec<Row>, [usize; 2]), CountersError> {
        let counts = self.counters.snapshot()?;
        let host = self.host();
        let config = self.config().config;
        let v4 = counts
            .addresses
            .iter()
            .filter(|c| c.address.is_ipv4())
            .count();
        Ok((
            inventory::rows(&host, &config, &counts),
            [v4, counts.addresses.len() - v4],
        ))
    }
}
