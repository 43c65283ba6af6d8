//! Turning counter snapshots into intervals: per (interface, address,
//! direction) deltas since the last committed sample, reset-aware.
//!
//! The kernel's counters are the truth; the sampler only differences them.
//! Two kinds of reset are told apart:
//! - the maps themselves are new (a reboot, `aliasstat detach`): the
//!   boot id or the map ids differ from the stored baseline's, so nothing
//!   is differenced against it. The time since the last sample is
//!   missing, and the new maps' counts are counted from this daemon's
//!   start if it created them;
//! - one entry went backwards (an idle foreign entry evicted and created
//!   again): its delta is its whole new value, never negative.
//!
//! An upgrade of the map layout keeps the old maps (their counts are
//! summed with the new ones'), so its baseline stays valid: the stored map
//! ids are a subset of the new ones.

use std::{collections::HashMap, net::IpAddr};

use common::{Counters, Direction};

use super::{
    codec::Traffic,
    store::{BaselineRecord, SeriesKey},
};
use crate::{
    bpf::counters::Snapshot,
    inventory::{self, Config, HostTable, State},
};

type Key = (u32, Direction, IpAddr);

/// Which boot and which maps counters come from: `boot_id` and the map
/// ids, as `<boot_id> <id> <id>…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    pub boot: String,
    pub maps: Vec<u32>,
}

impl Epoch {
    pub fn encode(&self) -> String {
        let mut s = self.boot.clone();
        for id in &self.maps {
            s.push(' ');
            s.push_str(&id.to_string());
        }
        s
    }

    pub fn decode(text: &str) -> Self {
        let mut words = text.split(' ');
        let boot = words.next().unwrap_or_default().to_owned();
        Self {
            boot,
            maps: words.filter_map(|w| w.parse().ok()).collect(),
        }
    }

    /// Whether counters read under `self` continue those of `earlier`:
    /// same boot, and every map `earlier` read is still read.
    pub fn continues(&self, earlier: &Self) -> bool {
        self.boot == earlier.boot
            && !earlier.maps.is_empty()
            && earlier.maps.iter().all(|id| self.maps.contains(id))
    }
}

/// How a sampler took up from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// The stored baseline holds for these maps: nothing is lost.
    Continued { since_ms: i64 },
    /// The maps are new (reboot, detach): counted from the daemon's start;
    /// the time since the last stored sample, if any, is missing.
    NewMaps { last_ms: Option<i64> },
    /// Maps of unknown history (no baseline for them): their counts so
    /// far belong to no known interval, and counting starts now.
    Unknown,
}

/// What one interval is made of, ready for the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// `(start_ms, end_ms, step_ms)`; `None` when there is no interval to
    /// write, only a baseline.
    pub window: Option<(i64, i64, i64)>,
    pub traffic: Vec<(SeriesKey, Traffic)>,
    pub baseline: BaselineRecord,
}

pub struct Sampler {
    step_ms: i64,
    epoch: Epoch,
    /// Raw counters at the last committed sample, `None` until the first
    /// sample when the maps' history is unknown.
    last: Option<HashMap<Key, Counters>>,
    last_ms: i64,
}

impl Sampler {
    /// A sampler taking up from the stored baseline. `fresh_maps` says
    /// that this daemon created the maps (none were pinned), at
    /// `started_ms`.
    pub fn resume(
        step_ms: i64,
        epoch: Epoch,
        stored: Option<&BaselineRecord>,
        fresh_maps: bool,
        started_ms: i64,
    ) -> (Self, Resumed) {
        let valid = stored.filter(|b| epoch.continues(&Epoch::decode(&b.epoch)));
        let (last, last_ms, resumed) = match (valid, fresh_maps) {
            (Some(b), _) => (
                Some(b.counts.iter().copied().collect()),
                b.at_ms,
                Resumed::Continued { since_ms: b.at_ms },
            ),
            (None, true) => (
                Some(HashMap::new()),
                started_ms,
                Resumed::NewMaps {
                    last_ms: stored.map(|b| b.at_ms),
                },
            ),
            (None, false) => (None, started_ms, Resumed::Unknown),
        };
        let sampler = Self {
            step_ms,
            epoch,
            last,
            last_ms,
        };
        (sampler, resumed)
    }

    /// The interval from the last committed sample to `now_ms`, with the
    /// alias and owner of each address as they are now. Foreign addresses
    /// (neither held nor documented) are not billed and not stored.
    pub fn interval(
        &self,
        snap: &Snapshot,
        host: &HostTable,
        config: &Config,
        now_ms: i64,
    ) -> Pending {
        let mut series: HashMap<SeriesKey, Traffic> = HashMap::new();
        if let Some(last) = &self.last {
            for c in &snap.addresses {
                let key = (c.ifindex, c.direction, c.address);
                let delta = delta(last.get(&key).copied().unwrap_or_default(), c.counters);
                if delta == Counters::default()
                    || inventory::state(host, config, c.address) == State::Foreign
                {
                    continue;
                }
                let alias = config.alias(c.address);
                let name = SeriesKey {
                    interface: host.link_name(c.ifindex),
                    address: c.address.to_string(),
                    alias: alias.map(|a| a.name.clone()).unwrap_or_default(),
                    owner: alias.map(|a| a.owner.clone()).unwrap_or_default(),
                };
                series.entry(name).or_default().add(c.direction, delta);
            }
        }
        let mut traffic: Vec<_> = series.into_iter().collect();
        traffic.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let window = (self.last.is_some() && now_ms > self.last_ms).then_some((
            self.last_ms,
            now_ms,
            self.step_ms,
        ));
        Pending {
            window,
            traffic,
            baseline: BaselineRecord {
                epoch: self.epoch.encode(),
                at_ms: now_ms,
                counts: snap
                    .addresses
                    .iter()
                    .map(|c| ((c.ifindex, c.direction, c.address), c.counters))
                    .collect(),
            },
        }
    }

    /// Moves on once `pending` is stored. Until then the next interval
    /// still starts at the last committed sample, so a failed write makes
    /// one longer interval instead of losing one.
    pub fn committed(&mut self, pending: Pending) {
        self.last_ms = pending.baseline.at_ms;
        self.last = Some(pending.baseline.counts.into_iter().collect());
    }

    /// The next multiple of the step after `now_ms`.
    pub fn next_boundary(&self, now_ms: i64) -> i64 {
        (now_ms.div_euclid(self.step_ms) + 1) * self.step_ms
    }
}

/// What a counter gained from `before` to `now`. A counter that went
/// backwards restarted from zero in between: it gained what it holds.
pub fn delta(before: Counters, now: Counters) -> Counters {
    if now.packets < before.packets || now.bytes < before.bytes {
        now
    } else {
        Counters::new(now.packets - before.packets, now.bytes - before.bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use netlink_packet_route::{
        RouteNetlinkMessage,
        address::{AddressFlags, AddressScope},
    };

    use super::*;
    use crate::{
        bpf::counters::AddressCount,
        inventory::{
            Alias,
            host::tests::{addr, link},
        },
    };

    fn host() -> Arc<HostTable> {
        let mut t = HostTable::default();
        t.apply(&link(2, "eth0"));
        for ip in ["192.0.2.1", "192.0.2.2"] {
            t.apply(&RouteNetlinkMessage::NewAddress(addr(
                2,
                ip,
                24,
                None,
                AddressFlags::Permanent,
                AddressScope::Universe,
            )));
        }
        Arc::new(t)
    }

    fn config() -> Config {
        Config::new(vec![Alias {
            name: "shop".into(),
            address: "192.0.2.1".parse().unwrap(),
            owner: "web".into(),
            purpose: String::new(),
            interface: None,
            service: None,
            commit_bps: None,
        }])
    }

    fn snap(counts: &[(&str, Direction, u64, u64)]) -> Snapshot {
        Snapshot {
            addresses: counts
                .iter()
                .map(|&(ip, direction, p, b)| AddressCount {
                    ifindex: 2,
                    direction,
                    address: ip.parse().unwrap(),
                    counters: Counters::new(p, b),
                })
                .collect(),
            other: Vec::new(),
        }
    }

    fn epoch(boot: &str, maps: &[u32]) -> Epoch {
        Epoch {
            boot: boot.into(),
            maps: maps.to_vec(),
        }
    }

    #[test]
    fn deltas_never_go_negative() {
        assert_eq!(
            delta(Counters::new(5, 500), Counters::new(7, 900)),
            Counters::new(2, 400)
        );
        assert_eq!(
            delta(Counters::new(5, 500), Counters::new(1, 100)),
            Counters::new(1, 100)
        );
        assert_eq!(
            delta(Counters::new(5, 500), Counters::new(5, 400)),
            Counters::new(5, 400)
        );
    }

    #[test]
    fn epochs_continue_across_upgrades_not_reboots() {
        let old = epoch("b1", &[10, 11]);
        assert!(epoch("b1", &[10, 11]).continues(&old));
        assert!(epoch("b1", &[10, 11, 20, 21]).continues(&old), "upgrade");
        assert!(!epoch("b1", &[20, 21]).continues(&old), "detach");
        assert!(!epoch("b2", &[10, 11]).continues(&old), "reboot");
        assert_eq!(Epoch::decode(&old.encode()), old);
    }

    #[test]
    fn intervals_difference_the_baseline_and_skip_foreign() {
        let (host, config) = (host(), config());
        let (mut s, resumed) = Sampler::resume(300_000, epoch("b", &[1]), None, true, 1_000);
        assert_eq!(resumed, Resumed::NewMaps { last_ms: None });
        let first = snap(&[
            ("192.0.2.1", Direction::Rx, 2, 200),
            ("198.51.100.9", Direction::Rx, 9, 900),
        ]);
        let p = s.interval(&first, &host, &config, 300_000);
        assert_eq!(p.window, Some((1_000, 300_000, 300_000)));
        assert_eq!(p.traffic.len(), 1, "the foreign address is not billed");
        assert_eq!(p.traffic[0].0.alias, "shop");
        assert_eq!(p.traffic[0].1.rx, Counters::new(2, 200));
        s.committed(p);
        let second = snap(&[
            ("192.0.2.1", Direction::Rx, 5, 700),
            ("192.0.2.1", Direction::Tx, 1, 60),
            ("192.0.2.2", Direction::Tx, 4, 40),
        ]);
        let p = s.interval(&second, &host, &config, 600_000);
        assert_eq!(p.window, Some((300_000, 600_000, 300_000)));
        let shop = &p.traffic[0];
        assert_eq!(
            (shop.1.rx, shop.1.tx),
            (Counters::new(3, 500), Counters::new(1, 60))
        );
        assert_eq!(p.traffic[1].0.alias, "", "undocumented");
        assert_eq!(p.traffic[1].1.tx, Counters::new(4, 40));
    }

    #[test]
    fn resumes_only_from_a_baseline_of_the_same_maps() {
        let stored = BaselineRecord {
            epoch: epoch("b", &[1, 2]).encode(),
            at_ms: 500,
            counts: vec![(
                (2, Direction::Rx, "192.0.2.1".parse().unwrap()),
                Counters::new(5, 500),
            )],
        };
        let (s, r) = Sampler::resume(300_000, epoch("b", &[1, 2]), Some(&stored), false, 9_000);
        assert_eq!(r, Resumed::Continued { since_ms: 500 });
        let p = s.interval(
            &snap(&[("192.0.2.1", Direction::Rx, 6, 600)]),
            &host(),
            &config(),
            9_500,
        );
        assert_eq!(p.window, Some((500, 9_500, 300_000)));
        assert_eq!(p.traffic[0].1.rx, Counters::new(1, 100));
        // Detached and created again: counted from this start, nothing
        // differenced against the old maps' baseline.
        let (s, r) = Sampler::resume(300_000, epoch("b", &[7, 8]), Some(&stored), true, 9_000);
        assert_eq!(r, Resumed::NewMaps { last_ms: Some(500) });
        let p = s.interval(
            &snap(&[("192.0.2.1", Direction::Rx, 1, 100)]),
            &host(),
            &config(),
            9_500,
        );
        assert_eq!(p.window, Some((9_000, 9_500, 300_000)));
        assert_eq!(p.traffic[0].1.rx, Counters::new(1, 100));
        // Maps nobody sampled: only a baseline.
        let (s, r) = Sampler::resume(300_000, epoch("b", &[7, 8]), Some(&stored), false, 9_000);
        assert_eq!(r, Resumed::Unknown);
        let p = s.interval(
            &snap(&[("192.0.2.1", Direction::Rx, 1, 100)]),
            &host(),
            &config(),
            9_500,
        );
        assert_eq!((p.window, p.traffic.len()), (None, 0));
    }
}
