//! Label text rendered once per inventory: the per-address series' labels
//! and the inventory families, kept between scrapes and thrown away only
//! when the host's addresses or interfaces, or the alias file, change.

use std::{net::IpAddr, sync::Arc};

use foldhash::HashMap;

use super::{addresses::ADDRESS, family::Rendered, inventory::Inventory};
use crate::inventory::{Config, HostTable};

/// An interface name, interned for this inventory: series on several
/// indexes with one name (an interface deleted and created again) share
/// it, and are summed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interface(u32);

#[derive(Default)]
pub struct LabelCache {
    /// The versions the text below was rendered from. Both watch channels
    /// publish a new `Arc` for every change, so comparing pointers is
    /// enough to know whether anything changed.
    host: Arc<HostTable>,
    config: Arc<Config>,
    by_index: HashMap<u32, Interface>,
    by_name: HashMap<String, Interface>,
    names: Vec<String>,
    series: HashMap<(IpAddr, Interface), (Arc<Rendered<3>>, u64)>,
    inventory: Option<Inventory>,
    /// Counts scrapes, to tell which series the last one used.
    scrape: u64,
}

impl LabelCache {
    /// Starts a scrape of `host` and `config`, dropping what was rendered
    /// for earlier versions.
    pub fn follow(&mut self, host: &Arc<HostTable>, config: &Arc<Config>) {
        self.scrape += 1;
        if Arc::ptr_eq(host, &self.host) && Arc::ptr_eq(config, &self.config) {
            return;
        }
        *self = Self {
            host: host.clone(),
            config: config.clone(),
            scrape: self.scrape,
            ..Self::default()
        };
    }

    /// The interface of index `ifindex`, by its name as last reported.
    pub fn interface(&mut self, ifindex: u32) -> Interface {
        if let Some(&i) = self.by_index.get(&ifindex) {
            return i;
        }
        let name = self.host.link_name(ifindex);
        let next = Interface(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        let i = *self.by_name.entry(name.clone()).or_insert_with(|| {
            self.names.push(name);
            next
        });
        self.by_index.insert(ifindex, i);
        i
    }

    pub fn name(&self, i: Interface) -> &str {
        &self.names[i.0 as usize]
    }

    /// `address="…",alias="…",interface="…"` of one per-address series.
    pub fn series(&mut self, address: IpAddr, on: Interface) -> Arc<Rendered<3>> {
        let scrape = self.scrape;
        if let Some((text, used)) = self.series.get_mut(&(address, on)) {
            *used = scrape;
            return text.clone();
        }
        let alias = self.config.alias(address).map_or("", |a| a.name.as_str());
        let text =
            Arc::new(ADDRESS.render([&address.to_string(), alias, &self.names[on.0 as usize]]));
        self.series.insert((address, on), (text.clone(), scrape));
        text
    }

    /// Forgets the series this scrape did not use once they outnumber
    /// those it did (idle foreign addresses evicted from the map), so the
    /// cache follows the map's size and not its history.
    pub fn prune(&mut self, used: usize) {
        if self.series.len() > 2 * used + 1024 {
            let scrape = self.scrape;
            self.series.retain(|_, (_, last)| *last == scrape);
        }
    }

    /// The inventory families' text for this host and file.
    pub fn inventory(&mut self) -> &Inventory {
        let (host, config) = (&self.host, &self.config);
        self.inventory
            .get_or_insert_with(|| Inventory::render(host, config))
    }
}
