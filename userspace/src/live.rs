//! The running daemon's state, as the HTTP endpoints see it: the counters,
//! the host's addresses, the alias file, and what is attached where.

use std::{
    sync::{Arc, Mutex},
    time::SystemTime,
};

use tokio::sync::watch;

use crate::{
    counters::{CounterSource, CountersError},
    foreign::ForeignBudget,
    inventory::{self, Config, HostTable, Row},
    loader::Attachment,
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
    pub attachments: Vec<Attachment>,
    /// Capacity of the address map, as created.
    pub address_capacity: u32,
    pub foreign: Mutex<ForeignBudget>,
}

impl Live {
    /// Whether `a` is still attached: the interface it was attached to
    /// still exists under the same index (a deleted interface takes its
    /// tcx and XDP links with it).
    pub fn is_attached(&self, a: &Attachment) -> bool {
        crate::interfaces::index(&a.iface) == Some(a.ifindex)
    }

    pub fn all_attached(&self) -> bool {
        self.attachments.iter().all(|a| self.is_attached(a))
    }

    /// The joined inventory, as `aliasstat aliases` shows it.
    pub fn rows(&self) -> Result<Vec<Row>, CountersError> {
        let counts = self.counters.snapshot()?;
        let host = self.host.borrow().clone();
        let config = self.config.borrow().config.clone();
        Ok(inventory::rows(&host, &config, &counts))
    }
}
