//! The peers of every local address, as `GET /api/v1/peers` serves them
//! and `aliasstat peers` prints them: the kernel's pairs and the record's
//! merged, joined with the inventory, one object per (address, interface).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    net::IpAddr,
    time::{Duration, SystemTime},
};

use common::{
    Counters,
    peer::{PeerCounts, PeerKey, PeerMissKey},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Clock, PairKey, Record, Remote, Totals, ends_of, pair_of, time};
use crate::{
    bpf::counters::Snapshot,
    inventory::{self, Config, HostTable, State},
};

/// What [`super::Peers::with_all`] reads together.
pub struct Tables<'a> {
    /// Both kernel tables' pairs, `PEERS_V4`'s first.
    pub kernel: &'a [(PeerKey, PeerCounts)],
    /// How many of `kernel` `PEERS_V4` holds.
    pub kernel_v4: usize,
    pub missed: &'a [(PeerMissKey, Counters)],
    pub record: &'a Record,
}

/// A wall time, written as RFC 3339 UTC to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(pub SystemTime);

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time::rfc3339(self.0))
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        time::parse_rfc3339(&text)
            .map(Stamp)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }
}

/// One local address on one interface, with every peer listed for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPeers {
    pub address: IpAddr,
    pub interface: String,
    pub alias: Option<String>,
    pub state: State,
    /// False when some of its packets found the kernel's table full: the
    /// list lacks their peers (the address totals still have them).
    pub complete: bool,
    /// The latest packet of any listed peer; `null` for none.
    pub last_traffic: Option<Stamp>,
    pub peers: Vec<PeerRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    pub peer: Remote,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub first_seen: Stamp,
    pub last_seen: Stamp,
}

impl PeerRow {
    fn new(peer: Remote, t: &Totals) -> Self {
        Self {
            peer,
            rx_packets: t.rx_packets,
            rx_bytes: t.rx_bytes,
            tx_packets: t.tx_packets,
            tx_bytes: t.tx_bytes,
            first_seen: Stamp(time::from_unix_ms(t.first_seen_ms)),
            last_seen: Stamp(time::from_unix_ms(t.last_seen_ms)),
        }
    }
}

/// Not-recorded packets per (interface, local address).
pub fn missed(tables: &Tables<'_>, host: &HostTable) -> BTreeMap<(String, IpAddr), Counters> {
    let mut out: BTreeMap<(String, IpAddr), Counters> = BTreeMap::new();
    for (key, counters) in tables.missed {
        if let Some(address) = key.local_ip() {
            *out.entry((host.link_name(key.ifindex), address))
                .or_default() += *counters;
        }
    }
    out
}

/// Every address with peers or not-recorded packets, and every alias the
/// host holds or the file documents (with no peers if none talked to it;
/// loopback and link-local plumbing only if documented), in address
/// order.
pub fn build(
    tables: &Tables<'_>,
    host: &HostTable,
    config: &Config,
    clock: &Clock,
) -> Vec<AddressPeers> {
    let mut pairs: BTreeMap<PairKey, Totals> = BTreeMap::new();
    let kernel = tables
        .kernel
        .iter()
        .filter_map(|(k, c)| Some((pair_of(k, host)?, Totals::of(c, clock))));
    let record = tables.record.entries().map(|(k, t)| (k.clone(), *t));
    for (pair, totals) in kernel.chain(record) {
        pairs.entry(pair).or_insert(Totals::EMPTY).merge(&totals);
    }
    let missed = missed(tables, host);
    let mut by_address: BTreeMap<(IpAddr, String), Vec<PeerRow>> = BTreeMap::new();
    for (pair, totals) in &pairs {
        by_address
            .entry((pair.address, pair.interface.clone()))
            .or_default()
            .push(PeerRow::new(pair.peer, totals));
    }
    for (interface, address) in missed.keys() {
        by_address.entry((*address, interface.clone())).or_default();
    }
    let seen: BTreeSet<IpAddr> = by_address.keys().map(|(a, _)| *a).collect();
    for row in inventory::rows(host, config, &Snapshot::default()) {
        let alias = row.alias.is_some() || row.scope.is_none_or(|s| s.is_alias_scope());
        if alias && row.state != State::Foreign && !seen.contains(&row.address) {
            let interface = row.interface.unwrap_or_default();
            by_address.entry((row.address, interface)).or_default();
        }
    }
    by_address
        .into_iter()
        .map(|((address, interface), peers)| AddressPeers {
            address,
            alias: config.alias(address).map(|a| a.name.clone()),
            state: inventory::state(host, config, address),
            complete: !missed.contains_key(&(interface.clone(), address)),
            last_traffic: peers.iter().map(|p| p.last_seen).max(),
            interface,
            peers,
        })
        .collect()
}

/// Distinct peers of each local address over all its interfaces, as
/// [`build`] lists them (a peer seen on two links counts once), counted
/// in one pass over the pairs without naming interfaces or merging
/// totals. An address with no peer is absent.
pub fn distinct(tables: &Tables<'_>) -> HashMap<IpAddr, usize> {
    let kernel = tables.kernel.iter().filter_map(|(k, _)| ends_of(k));
    let record = tables.record.entries().map(|(k, _)| (k.address, k.peer));
    let pairs: HashSet<(IpAddr, Remote)> = kernel.chain(record).collect();
    let mut counts = HashMap::new();
    for (address, _) in pairs {
        *counts.entry(address).or_default() += 1;
    }
    counts
}

/// The addresses named by `wanted` (an address or an alias name); all of
/// them for `None`.
pub fn select(list: Vec<AddressPeers>, wanted: Option<&str>) -> Vec<AddressPeers> {
    let Some(wanted) = wanted else {
        return list;
    };
    let ip: Option<IpAddr> = wanted.parse().ok();
    list.into_iter()
        .filter(|a| Some(a.address) == ip || a.alias.as_deref() == Some(wanted))
        .collect()
}

/// Keeps only the peers seen in the last `since` before `now`.
pub fn seen_since(list: &mut [AddressPeers], since: Duration, now: SystemTime) {
    let cut = Stamp(now - since);
    for a in list {
        a.peers.retain(|p| p.last_seen >= cut);
    }
}

/// Whether `a` has had no traffic in the last `idle` before `now`.
pub fn is_silent(a: &AddressPeers, idle: Duration, now: SystemTime) -> bool {
    a.last_traffic.is_none_or(|t| t < Stamp(now - idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_has_the_documented_shape() {
        let at = |text| Stamp(time::parse_rfc3339(text).unwrap());
        let a = AddressPeers {
            address: "10.0.0.5".parse().unwrap(),
            interface: "eth0".into(),
            alias: Some("shop-tls".into()),
            state: State::Documented,
            complete: true,
            last_traffic: Some(at("2026-12-01T10:00:00Z")),
            peers: vec![PeerRow {
                peer: "203.0.113.7".parse().unwrap(),
                rx_packets: 3,
                rx_bytes: 426,
                tx_packets: 3,
                tx_bytes: 426,
                first_seen: at("2026-11-30T08:00:00Z"),
                last_seen: at("2026-12-01T10:00:00Z"),
            }],
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(
            text,
            r#"{"address":"10.0.0.5","interface":"eth0","alias":"shop-tls","state":"documented","complete":true,"last_traffic":"2026-12-01T10:00:00Z","peers":[{"peer":"203.0.113.7","rx_packets":3,"rx_bytes":426,"tx_packets":3,"tx_bytes":426,"first_seen":"2026-11-30T08:00:00Z","last_seen":"2026-12-01T10:00:00Z"}]}"#
        );
        assert_eq!(serde_json::from_str::<AddressPeers>(&text).unwrap(), a);
        let prefix: Remote = "2001:db8:1:2::/64".parse().unwrap();
        assert_eq!(prefix.to_string(), "2001:db8:1:2::/64");
        assert_eq!(prefix.prefix, 64);
    }

    #[test]
    fn a_peer_on_two_interfaces_counts_once() {
        let dir = crate::history::store::tests::tempdir("peers-distinct");
        let mut record = Record::load(&dir).unwrap();
        let five: IpAddr = "10.0.0.5".parse().unwrap();
        let six: IpAddr = "10.0.0.6".parse().unwrap();
        let remote = |text: &str| text.parse::<Remote>().unwrap();
        for (interface, peer) in [("eth1", "192.0.2.0/24"), ("eth0", "192.0.2.1")] {
            let key = PairKey {
                interface: interface.into(),
                address: five,
                peer: remote(peer),
            };
            record.add(key, Totals::EMPTY);
        }
        let pair = |ifindex, last: u8| {
            let key = PeerKey::ipv4(ifindex, [10, 0, 0, 5], [192, 0, 2, last], 32);
            let counts = PeerCounts::first(common::Direction::Rx, Counters::new(1, 1), 0);
            (key, counts)
        };
        let kernel = [pair(1, 1), pair(1, 2), pair(2, 2)];
        let quiet = PeerKey::ipv4(1, [10, 0, 0, 6], [192, 0, 2, 9], 32).missed();
        let tables = Tables {
            kernel: &kernel,
            kernel_v4: kernel.len(),
            missed: &[(quiet, Counters::new(1, 1))],
            record: &record,
        };
        let counts = distinct(&tables);
        assert_eq!(counts[&five], 3);
        // No peer: absent, which the page shows as 0.
        assert_eq!(counts.get(&six).copied().unwrap_or(0), 0);
        // What `build` lists, over every interface of the address.
        let list = build(
            &tables,
            &HostTable::default(),
            &Config::default(),
            &Clock::now(),
        );
        let listed: BTreeSet<Remote> = list
            .iter()
            .filter(|a| a.address == five)
            .flat_map(|a| a.peers.iter().map(|p| p.peer))
            .collect();
        assert_eq!(listed.len(), counts[&five]);
        assert!(list.iter().any(|a| a.address == six && a.peers.is_empty()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn silence_and_since_are_judged_by_last_seen() {
        let now = time::parse_rfc3339("2026-12-08T00:00:00Z").unwrap();
        let day = Duration::from_secs(86_400);
        let peer = |last: SystemTime| PeerRow {
            peer: "192.0.2.1".parse().unwrap(),
            rx_packets: 1,
            rx_bytes: 1,
            tx_packets: 0,
            tx_bytes: 0,
            first_seen: Stamp(last),
            last_seen: Stamp(last),
        };
        let mut a = AddressPeers {
            address: "10.0.0.5".parse().unwrap(),
            interface: "eth0".into(),
            alias: None,
            state: State::Undocumented,
            complete: true,
            last_traffic: Some(Stamp(now - 8 * day)),
            peers: vec![peer(now - 8 * day), peer(now - day)],
        };
        assert!(is_silent(&a, 7 * day, now));
        a.last_traffic = Some(Stamp(now - day));
        assert!(!is_silent(&a, 7 * day, now));
        a.last_traffic = None;
        assert!(is_silent(&a, 7 * day, now));
        let mut list = [a];
        seen_since(&mut list, 7 * day, now);
        assert_eq!(list[0].peers, [peer(now - day)]);
    }
}
