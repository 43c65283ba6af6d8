//! The series budget for foreign addresses.
//!
//! Addresses the host holds or the alias file documents are few and are
//! always exported one series each. Foreign addresses (multicast,
//! broadcast, forwarded traffic, a scan) are not bounded by anything the
//! operator controls, so at most `cap` of them get series of their own: the
//! first ones seen, for as long as their map entry lives. The rest are
//! summed per interface and direction into one "other" counter.
//!
//! Every exported counter stays monotonic. A key that stops contributing
//! to "other" (its entry left the map, or it stopped being foreign)
//! leaves its last exported value behind in a frozen per-interface total,
//! and a key whose own series ended never gets one again while the daemon
//! runs, so no series restarts from a lower value. The budget is kept in
//! memory: after a daemon restart, "other" is recomputed from the map and
//! may restart lower, which Prometheus reads as a counter reset. The
//! per-address counters are the kernel's and never reset.

use std::{
    collections::{BTreeMap, VecDeque},
    net::IpAddr,
};

use common::{Counters, Direction};
use foldhash::{HashMap, HashSet};

use super::EntryKey;
use crate::bpf::counters::AddressCount;

/// What to export: one series per listed address, one per (interface,
/// direction) for everything else.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub listed: Vec<AddressCount>,
    pub other: BTreeMap<(u32, Direction), Counters>,
}

pub struct ForeignBudget {
    cap: usize,
    /// Foreign keys with series of their own, with their last seen counts.
    listed: HashMap<EntryKey, Counters>,
    /// Foreign keys summed into "other", with their last seen counts.
    unlisted: HashMap<EntryKey, Counters>,
    /// What keys that no longer count towards "other" had contributed.
    frozen: BTreeMap<(u32, Direction), Counters>,
    /// Listed keys whose entry went away; if they come back they go to
    /// "other", so their series never reappears lower. Oldest first.
    retired: VecDeque<EntryKey>,
    retired_set: HashSet<EntryKey>,
}

impl ForeignBudget {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            listed: HashMap::default(),
            unlisted: HashMap::default(),
            frozen: BTreeMap::new(),
            retired: VecDeque::new(),
            retired_set: HashSet::default(),
        }
    }

    /// How many foreign keys have series of their own.
    pub fn listed(&self) -> usize {
        self.listed.len()
    }

    /// Splits one scrape's counts.
    pub fn split(&mut self, counts: &[AddressCount], is_foreign: impl Fn(IpAddr) -> bool) -> Split {
        let key = |c: &AddressCount| (c.ifindex, c.direction, c.address);
        let live: HashSet<EntryKey> = counts.iter().map(key).collect();

        let gone: Vec<(EntryKey, Counters)> =
            self.listed.extract_if(|k, _| !live.contains(k)).collect();
        for (k, last) in gone {
            self.retire(k);
            self.freeze(&k, last);
        }
        let gone: Vec<(EntryKey, Counters)> =
            self.unlisted.extract_if(|k, _| !live.contains(k)).collect();
        for (k, last) in gone {
            self.freeze(&k, last);
        }

        let mut split = Split::default();
        for c in counts {
            let k = key(c);
            if !is_foreign(c.address) {
                // Now held or documented: its own series from here on; what
                // "other" already showed of it stays there.
                if let Some(last) = self.unlisted.remove(&k) {
                    self.freeze(&k, last);
                }
                split.listed.push(c.clone());
            } else if let Some(last) = self.listed.get_mut(&k) {
                *last = c.counters;
                split.listed.push(c.clone());
            } else if let Some(last) = self.unlisted.get_mut(&k) {
                *last = c.counters;
                *split.other.entry((c.ifindex, c.direction)).or_default() += c.counters;
            } else if self.listed.len() < self.cap && !self.retired_set.contains(&k) {
                self.listed.insert(k, c.counters);
                split.listed.push(c.clone());
            } else {
                self.unlisted.insert(k, c.counters);
                *split.other.entry((c.ifindex, c.direction)).or_default() += c.counters;
            }
        }
        for (slot, frozen) in &self.frozen {
            *split.other.entry(*slot).or_default() += *frozen;
        }
        split
    }

    /// `k`'s entry was evicted and its counts moved to the evicted bucket,
    /// which the exporter adds to "other": forget it without freezing, or
    /// they would count twice. A listed key is retired: if its address comes
    /// back, it goes to "other" rather than restart its series lower.
    pub fn evicted(&mut self, k: &EntryKey) {
        if self.listed.remove(k).is_some() {
            self.retire(*k);
        }
        self.unlisted.remove(k);
    }

    fn freeze(&mut self, k: &EntryKey, last: Counters) {
        let &(ifindex, direction, _) = k;
        *self.frozen.entry((ifindex, direction)).or_default() += last;
    }

    fn retire(&mut self, k: EntryKey) {
        // Bounded so that churn cannot grow memory without limit; a key
        // forgotten here was idle for longer than many others retired since.
        if self.retired.len() >= self.cap.max(1) * 4
            && let Some(old) = self.retired.pop_front()
        {
            self.retired_set.remove(&old);
        }
        if self.retired_set.insert(k) {
            self.retired.push_back(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(ip: &str, packets: u64) -> AddressCount {
        crate::foreign::rx(ip, packets, packets * 100)
    }

    fn listed(split: &Split) -> Vec<(String, u64)> {
        split
            .listed
            .iter()
            .map(|c| (c.address.to_string(), c.counters.packets))
            .collect()
    }

    fn other(split: &Split) -> u64 {
        split
            .other
            .get(&(2, Direction::Rx))
            .map_or(0, |c| c.packets)
    }

    const HOST: &str = "10.0.0.1";
    fn foreign(ip: IpAddr) -> bool {
        ip.to_string() != HOST
    }

    #[test]
    fn first_seen_foreign_addresses_get_series_up_to_the_cap() {
        let mut b = ForeignBudget::new(2);
        let s = b.split(
            &[
                count(HOST, 9),
                count("224.0.0.1", 1),
                count("224.0.0.2", 2),
                count("224.0.0.3", 3),
            ],
            foreign,
        );
        assert_eq!(
            listed(&s),
            [
                (HOST.into(), 9),
                ("224.0.0.1".into(), 1),
                ("224.0.0.2".into(), 2)
            ]
        );
        assert_eq!(other(&s), 3);
        // A later, bigger newcomer does not displace anyone.
        let s = b.split(
            &[
                count(HOST, 10),
                count("224.0.0.1", 1),
                count("224.0.0.2", 2),
                count("224.0.0.3", 4),
                count("224.0.0.4", 50),
            ],
            foreign,
        );
        assert_eq!(listed(&s).len(), 3);
        assert_eq!(other(&s), 54);
        assert_eq!(b.listed(), 2);
    }

    #[test]
    fn other_never_goes_down() {
        let mut b = ForeignBudget::new(1);
        let mut seen = Vec::new();
        let mut scrape = |b: &mut ForeignBudget, counts: &[AddressCount]| {
            let s = b.split(counts, foreign);
            seen.push(other(&s));
            s
        };
        scrape(&mut b, &[count("224.0.0.1", 1), count("224.0.0.2", 5)]);
        // 224.0.0.2 (unlisted) leaves the map: its 5 stay in other.
        scrape(&mut b, &[count("224.0.0.1", 2)]);
        // The listed one leaves; it is retired, and comes back to "other".
        scrape(&mut b, &[]);
        let s = scrape(&mut b, &[count("224.0.0.1", 1)]);
        assert_eq!(listed(&s), []);
        assert_eq!(seen, [5, 5, 7, 8]);
    }

    #[test]
    fn an_evicted_key_is_forgotten_without_freezing() {
        let mut b = ForeignBudget::new(1);
        b.split(&[count("224.0.0.1", 3), count("224.0.0.2", 4)], foreign);
        b.evicted(&(2, Direction::Rx, "224.0.0.1".parse().unwrap()));
        b.evicted(&(2, Direction::Rx, "224.0.0.2".parse().unwrap()));
        // Their counts now live in the evicted bucket, not in "other".
        let s = b.split(&[], foreign);
        assert_eq!(other(&s), 0);
        // The listed one was retired: back again, it goes to "other".
        let s = b.split(&[count("224.0.0.1", 1)], foreign);
        assert_eq!((listed(&s), other(&s)), (vec![], 1));
    }

    #[test]
    fn an_unlisted_address_that_becomes_an_alias_gets_its_own_series() {
        let mut b = ForeignBudget::new(0);
        let s = b.split(&[count("10.0.0.9", 7)], foreign);
        assert_eq!(other(&s), 7);
        let now_held = |ip: IpAddr| ip.to_string() != "10.0.0.9";
        let s = b.split(&[count("10.0.0.9", 8)], now_held);
        assert_eq!(listed(&s), [("10.0.0.9".into(), 8)]);
        // What "other" showed stays: the counter does not go backwards.
        assert_eq!(other(&s), 7);
    }
}
