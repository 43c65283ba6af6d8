//! One row per address: inventory, documentation and counts joined. This
//! is what `aliasstat aliases` prints and what `/api/v1/aliases` serves.

use std::{collections::BTreeMap, net::IpAddr};

use common::{Counters, Direction};
use serde::Serialize;

use super::{Config, HostTable, Scope, State};
use crate::bpf::counters::Snapshot;

/// Counts of one address on one interface it was seen on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeenOn {
    pub interface: String,
    pub rx: Counters,
    pub tx: Counters,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub address: IpAddr,
    pub state: State,
    /// The interface holding the address (the first one, if several do).
    pub interface: Option<String>,
    pub label: Option<String>,
    pub prefix_len: Option<u8>,
    pub scope: Option<Scope>,
    pub flags: Vec<&'static str>,
    pub alias: Option<String>,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    /// Summed over every interface the address was seen on.
    pub rx: Counters,
    pub tx: Counters,
    /// Counts stay keyed by where packets were seen: a loopback alias
    /// reached through eth0 is counted on eth0.
    pub seen_on: Vec<SeenOn>,
}

/// Every address the host holds, the file documents, or the counters saw.
pub fn rows(host: &HostTable, config: &Config, counts: &Snapshot) -> Vec<Row> {
    let mut seen: BTreeMap<IpAddr, BTreeMap<u32, (Counters, Counters)>> = BTreeMap::new();
    for c in &counts.addresses {
        let (rx, tx) = seen
            .entry(c.address)
            .or_default()
            .entry(c.ifindex)
            .or_default();
        match c.direction {
            Direction::Rx => *rx += c.counters,
            Direction::Tx => *tx += c.counters,
        }
    }
    let mut addresses: Vec<IpAddr> = host
        .addresses()
        .map(|a| a.address)
        .chain(config.aliases().iter().map(|a| a.address))
        .chain(seen.keys().copied())
        .collect();
    addresses.sort_unstable();
    addresses.dedup();

    addresses
        .into_iter()
        .map(|address| {
            let holder = host.holders(address).next();
            let alias = config.alias(address);
            let seen_on: Vec<SeenOn> = seen
                .get(&address)
                .into_iter()
                .flatten()
                .map(|(&ifindex, &(rx, tx))| SeenOn {
                    interface: host.link_name(ifindex),
                    rx,
                    tx,
                })
                .collect();
            let rx = seen_on.iter().map(|s| s.rx).sum();
            let tx = seen_on.iter().map(|s| s.tx).sum();
            Row {
                address,
                state: State::of(alias.is_some(), holder.is_some()),
                interface: holder.map(|h| h.interface.clone()),
                label: holder.and_then(|h| h.label.clone()),
                prefix_len: holder.map(|h| h.prefix_len),
                scope: holder.map(|h| h.scope),
                flags: holder.map(|h| h.flags.clone()).unwrap_or_default(),
                alias: alias.map(|a| a.name.clone()),
                owner: alias.map(|a| a.owner.clone()),
                purpose: alias.map(|a| a.purpose.clone()),
                rx,
                tx,
                seen_on,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn joins_host_file_and_counts() {
        let mut host = HostTable::default();
        host.apply(&link(1, "lo"));
        host.apply(&link(2, "eth0"));
        host.apply(&RouteNetlinkMessage::NewAddress(addr(
            1,
            "192.0.2.53",
            32,
            Some("lo:dns"),
            AddressFlags::Permanent,
            AddressScope::Universe,
        )));
        let config = Config::new(vec![
            Alias {
                name: "dns".into(),
                address: "192.0.2.53".parse().unwrap(),
                owner: "infra".into(),
                purpose: "resolver".into(),
                interface: Some("lo".into()),
                service: None,
                commit_bps: None,
            },
            Alias {
                name: "vip".into(),
                address: "192.0.2.80".parse().unwrap(),
                owner: "web".into(),
                purpose: String::new(),
                interface: None,
                service: None,
                commit_bps: None,
            },
        ]);
        let count = |address: &str, direction, packets, bytes| AddressCount {
            ifindex: 2,
            direction,
            address: address.parse().unwrap(),
            counters: Counters::new(packets, bytes),
        };
        let counts = Snapshot {
            addresses: vec![
                count("192.0.2.53", Direction::Rx, 4, 400),
                count("192.0.2.53", Direction::Tx, 2, 120),
                count("192.0.2.255", Direction::Rx, 1, 78),
            ],
            other: vec![],
        };
        let rows = rows(&host, &config, &counts);
        type Brief = (
            String,
            State,
            Option<String>,
            Option<String>,
            Counters,
            Counters,
        );
        let brief: Vec<Brief> = rows
            .iter()
            .map(|r| {
                let address = r.address.to_string();
                (
                    address,
                    r.state,
                    r.interface.clone(),
                    r.alias.clone(),
                    r.rx,
                    r.tx,
                )
            })
            .collect();
        let t = Counters::new;
        assert_eq!(
            brief,
            [
                (
                    "192.0.2.53".into(),
                    State::Documented,
                    Some("lo".into()),
                    Some("dns".into()),
                    t(4, 400),
                    t(2, 120)
                ),
                (
                    "192.0.2.80".into(),
                    State::Absent,
                    None,
                    Some("vip".into()),
                    t(0, 0),
                    t(0, 0)
                ),
                (
                    "192.0.2.255".into(),
                    State::Foreign,
                    None,
                    None,
                    t(1, 78),
                    t(0, 0)
                ),
            ]
        );
        assert_eq!(rows[0].label.as_deref(), Some("lo:dns"));
        assert_eq!(rows[0].seen_on.len(), 1);
        assert_eq!(rows[0].seen_on[0].interface, "eth0");
    }
}
