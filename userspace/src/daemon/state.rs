//! The running daemon's state, as the HTTP endpoints see it: the counters,
//! the host's addresses, the alias file, and what is attached where.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use tokio::sync::watch;

use crate::{
    bpf::{
        attach::Attachment,
        counters::{CounterSource, CountersError, Snapshot},
    },
    foreign::{ForeignBudget, Split},
    inventory::{self, Config, HostTable, Row, State},
};

/// The alias file as last loaded, and how the last (re)load went.
#[derive(Clone, Debug)]
pub struct ConfigStatus {
    pub config: Arc<Config>,
    pub last_reload_success: bool,
    pub last_reload: SystemTime,
}

pub struct Live {
    pub counters: Box<dyn CounterSource + Send + Sync>,
    pub host: watch::Receiver<Arc<HostTable>>,
    pub config: watch::Receiver<ConfigStatus>,
    /// Every desired attachment, updated as interfaces come and go.
    pub attachments: RwLock<Vec<Attachment>>,
    /// Capacity of the address map, as created.
    pub address_capacity: u32,
    pub foreign: Mutex<ForeignBudget>,
}

impl Live {
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
        let mut budget = self
            .foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snap = self.counters.snapshot()?;
        let host = self.host.borrow().clone();
        let config = self.config.borrow().config.clone();
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

    /// How many foreign addresses have series of their own.
    pub fn foreign_series(&self) -> usize {
        self.foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .listed()
    }

    /// The joined inventory, as `aliasstat aliases` shows it.
    pub fn rows(&self) -> Result<Vec<Row>, CountersError> {
        let counts = self.counters.snapshot()?;
        let host = self.host.borrow().clone();
        let config = self.config.borrow().config.clone();
        Ok(inventory::rows(&host, &config, &counts))
    }
}
