//! Label text rendered once per inventory: the per-address series' labels
//! and the inventory families, kept between scrapes and thrown away only
//! when the host's addresses or interfaces, or the alias file, change.

use std::{net::IpAddr, sync::Arc};

use foldhash::HashMap;

use super::{
    addresses::ADDRESS,
    family::{Arena, Rendered},
    inventory::Inventory,
};
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
    /// The per-address series' label text, and where each one's is, with
    /// the last scrape that used it.
    text: Arena,
    series: HashMap<(IpAddr, Interface), (Rendered<3>, u64)>,
    /// Whether this scrape rendered new series into `text`.
    grew: bool,
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

    /// `address="…",alias="…",interface="…"` of one per-address series,
    /// in [`LabelCache::text`].
    pub fn series(&mut self, address: IpAddr, on: Interface) -> Rendered<3> {
        let scrape = self.scrape;
        if let Some((labels, used)) = self.series.get_mut(&(address, on)) {
            *used = scrape;
            return *labels;
        }
        let alias = self.config.alias(address).map_or("", |a| a.name.as_str());
        let values = [&address.to_string(), alias, &self.names[on.0 as usize]];
        let labels = ADDRESS.render(values, &mut self.text);
        self.series.insert((address, on), (labels, scrape));
        self.grew = true;
        labels
    }

    /// The text that [`LabelCache::series`] spans point into.
    pub fn text(&self) -> &Arena {
        &self.text
    }

    /// Ends a scrape that used `used` series: forgets the series it did not
    /// use once they outnumber those it did (idle foreign addresses evicted
    /// from the map), so the cache follows the map's size and not its
    /// history.
    pub fn prune(&mut self, used: usize) {
        if self.series.len() > 2 * used + 1024 {
            let scrape = self.scrape;
            self.series.retain(|_, (_, last)| *last == scrape);
            let mut kept = Arena::default();
            for (labels, _) in self.series.values_mut() {
                *labels = kept.copy(&self.text, *labels);
            }
            self.text = kept;
            self.grew = true;
        }
        if std::mem::take(&mut self.grew) {
            self.text.shrink();
        }
    }

    /// The inventory families' text for this host and file.
    pub fn inventory(&mut self) -> &Inventory {
        let (host, config) = (&self.host, &self.config);
        self.inventory
            .get_or_insert_with(|| Inventory::render(host, config))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::inventory::host::tests::link;

    #[test]
    fn pruning_keeps_the_text_of_the_series_still_used() {
        let mut host = HostTable::default();
        host.apply(&link(1, "lo"));
        let (host, config) = (Arc::new(host), Arc::new(Config::default()));
        let address = |i: u32| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i));
        let mut cache = LabelCache::default();
        cache.follow(&host, &config);
        let lo = cache.interface(1);
        for i in 0..3000 {
            cache.series(address(i), lo);
        }
        cache.prune(3000);
        // The next scrape sees one of the 3000: the others are forgotten
        // and the text is compacted around the one left.
        cache.follow(&host, &config);
        cache.series(address(2999), lo);
        cache.prune(1);
        assert_eq!(cache.series.len(), 1);
        cache.follow(&host, &config);
        let labels = cache.series(address(2999), lo);
        let text = r#"address="10.0.11.183",alias="",interface="lo""#;
        assert_eq!(cache.text().get(labels), text);
        // Nothing else is left in it.
        assert_eq!(format!("{:?}", cache.text()), format!("Arena({text:?})"));
    }
}
