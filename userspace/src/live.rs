//! The running daemon's state, as the HTTP endpoints see it: the counters,
//! the host's addresses, the alias file, and what is attached where.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use tokio::sync::watch;

use crate::{
    attach::Attachment,
    counters::{CounterSource, CountersError, Snapshot},
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

    /// One consistent read for the exporter: the counters, and which
    /// addresses get series of their own. The budget's lock is held across
    /// both, so an eviction never falls between the read and the split.
    pub fn split(&self) -> Result<(Snapshot, Split), CountersError> {
        let mut budget = self
            .foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snap = self.counters.snapshot()?;
        let host = self.host.borrow().clone();
        let config = self.config.borrow().config.clone();
        let split = budget.split(&snap.addresses, |a| {
            inventory::state(&host, &config, a) == State::Foreign
        });
        Ok((snap, split))
    }

    /// The joined inventory, as `aliasstat aliases` shows it.
    pub fn rows(&self) -> Result<Vec<Row>, CountersError> {
        let counts = self.counters.snapshot()?;
        let host = self.host.borrow().clone();
        let config = self.config.borrow().config.clone();
        Ok(inventory::rows(&host, &config, &counts))
    }
}
