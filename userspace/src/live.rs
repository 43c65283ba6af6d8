//! The running daemon's state, as the HTTP endpoints see it: the counters,
//! the host's addresses, the alias file, and what is attached where.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::SystemTime,
};

use tokio::sync::watch;

use crate::{
    attach::Attachment,
    counters::{CounterSource, CountersError},
    foreign::ForeignBudget,
    inventory::{self, Config, HostTable, Row},
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

    /// The joined inventory, as `aliasstat aliases` shows it.
    pub fn rows(&self) -> Result<Vec<Row>, CountersError> {
        let counts = self.counters.snapshot()?;
        let host = self.host.borrow().clone();
        let config = self.config.borrow().config.clone();
        Ok(inventory::rows(&host, &config, &counts))
    }
}
