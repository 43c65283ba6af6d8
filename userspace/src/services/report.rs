//! The address × service matrix, as `/api/v1/services` serves it and
//! `aliasstat services` prints it, built from one read of the counters.
//!
//! Unserved traffic is what the address counters saw arrive (TC or XDP
//! ingress) minus what the service programs saw delivered to a socket,
//! since the service programs attached. Delivered means handed to a
//! socket's receive path: a UDP datagram to a bound port, any TCP segment
//! for a listener or a connection (the SYN to a full accept queue
//! included), an ICMP packet some raw socket takes. Unserved is the rest:
//! UDP to a closed port, TCP to a closed port (answered with RST), ICMP
//! echo the kernel answers itself, and whatever the stack dropped before
//! any socket (bad checksums, firewall drops, reverse-path filtering).
//! A fragmented datagram reaches its socket reassembled, as one packet
//! with one header: its other fragments and their headers count as
//! unserved.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use common::{Counters, Direction, ServiceCell};
use serde::{Deserialize, Serialize};

use super::cgroups::Cgroup;
use crate::{
    bpf::counters::AddressCount,
    inventory::{Config, HostTable},
};

/// `/api/v1/services`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesDoc {
    pub addresses: Vec<AddressServices>,
}

/// One local address on one interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressServices {
    pub address: IpAddr,
    pub interface: String,
    /// The documented alias of the address, if any.
    pub alias: Option<String>,
    pub services: Vec<Service>,
    pub unserved: Unserved,
}

/// What the sockets of one cgroup received on, and sent from, an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub cgroup: String,
    pub unit: Option<String>,
    pub processes: Vec<String>,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

impl Service {
    /// The `unit` label: the unit, or the cgroup path where there is none.
    pub fn label(&self) -> &str {
        self.unit.as_deref().unwrap_or(&self.cgroup)
    }
}

/// Packets that arrived for the address and that no socket received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unserved {
    pub rx_packets: u64,
    pub rx_bytes: u64,
}

/// Everything one report is made of.
pub struct Inputs<'a> {
    /// The service maps, summed over CPUs.
    pub entries: &'a [(ServiceCell, Counters)],
    pub names: &'a HashMap<u64, Cgroup>,
    /// The address counters, read before `entries`.
    pub counted: &'a [AddressCount],
    /// The address counters' ingress when the service programs attached.
    pub baseline: &'a HashMap<(u32, IpAddr), Counters>,
    pub host: &'a HostTable,
    pub config: &'a Config,
    /// The interfaces the daemon counts on: the others' entries are left out.
    pub ifindexes: &'a BTreeSet<u32>,
}

/// One object per local address with traffic, in address order.
pub fn build(inputs: &Inputs<'_>) -> ServicesDoc {
    let mut by_address: BTreeMap<(IpAddr, u32), BTreeMap<String, Service>> = BTreeMap::new();
    for (key, counters) in inputs.entries {
        let address = key.address;
        if !inputs.ifindexes.contains(&key.ifindex) || !inputs.host.holds(address) {
            continue;
        }
        let cgroup = inputs.names.get(&key.cgroup);
        let path = cgroup.map_or_else(|| format!("cgroup-id:{}", key.cgroup), |c| c.path.clone());
        let service = by_address
            .entry((address, key.ifindex))
            .or_default()
            .entry(path.clone())
            .or_insert_with(|| Service {
                cgroup: path,
                unit: cgroup.and_then(|c| c.unit.clone()),
                processes: cgroup.map(|c| c.processes.clone()).unwrap_or_default(),
                rx_packets: 0,
                rx_bytes: 0,
                tx_packets: 0,
                tx_bytes: 0,
            });
        let (packets, bytes) = match key.direction {
            Direction::Rx => (&mut service.rx_packets, &mut service.rx_bytes),
            Direction::Tx => (&mut service.tx_packets, &mut service.tx_bytes),
        };
        *packets += counters.packets;
        *bytes += counters.bytes;
    }
    for c in inputs.counted {
        if c.direction == Direction::Rx
            && inputs.ifindexes.contains(&c.ifindex)
            && inputs.host.holds(c.address)
        {
            by_address.entry((c.address, c.ifindex)).or_default();
        }
    }
    let arrived: HashMap<(u32, IpAddr), Counters> = inputs
        .counted
        .iter()
        .filter(|c| c.direction == Direction::Rx)
        .map(|c| ((c.ifindex, c.address), c.counters))
        .collect();
    let addresses = by_address
        .into_iter()
        .map(|((address, ifindex), services)| {
            let services: Vec<Service> = services.into_values().collect();
            let arrived = arrived
                .get(&(ifindex, address))
                .copied()
                .unwrap_or_default();
            let before = inputs
                .baseline
                .get(&(ifindex, address))
                .copied()
                .unwrap_or_default();
            AddressServices {
                address,
                interface: inputs.host.link_name(ifindex),
                alias: inputs.config.alias(address).map(|a| a.name.clone()),
                unserved: unserved(arrived, before, &services),
                services,
            }
        })
        .collect();
    ServicesDoc { addresses }
}

/// Arrived since the baseline, less what was delivered; never below zero
/// (a datagram delivered to several sockets counts once per socket).
fn unserved(arrived: Counters, baseline: Counters, services: &[Service]) -> Unserved {
    let delivered_packets: u64 = services.iter().map(|s| s.rx_packets).sum();
    let delivered_bytes: u64 = services.iter().map(|s| s.rx_bytes).sum();
    Unserved {
        rx_packets: arrived
            .packets
            .saturating_sub(baseline.packets)
            .saturating_sub(delivered_packets),
        rx_bytes: arrived
            .bytes
            .saturating_sub(baseline.bytes)
            .saturating_sub(delivered_bytes),
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::{
        RouteNetlinkMessage,
        address::{AddressFlags, AddressScope},
    };

    use super::*;
    use crate::inventory::{
        Alias,
        host::tests::{addr, link},
    };

    fn host() -> HostTable {
        let mut t = HostTable::default();
        t.apply(&link(2, "eth0"));
        t.apply(&RouteNetlinkMessage::NewAddress(addr(
            2,
            "10.0.0.5",
            24,
            None,
            AddressFlags::Permanent,
            AddressScope::Universe,
        )));
        t
    }

    #[test]
    fn the_document_has_the_issue_shape() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let cell = |ifindex, direction| ServiceCell {
            cgroup: 40,
            ifindex,
            direction,
            address: ip,
        };
        let entries = [
            (cell(2, Direction::Rx), Counters::new(10, 1400)),
            (cell(2, Direction::Tx), Counters::new(10, 5200)),
            // On an interface the daemon does not count on.
            (cell(1, Direction::Rx), Counters::new(99, 99)),
        ];
        let names = HashMap::from([(
            40,
            Cgroup {
                path: "/system.slice/nginx.service".into(),
                unit: Some("nginx.service".into()),
                processes: vec!["nginx".into()],
            },
        )]);
        let counted = [AddressCount {
            ifindex: 2,
            direction: Direction::Rx,
            address: ip,
            counters: Counters::new(15, 1700),
        }];
        let baseline = HashMap::from([((2, ip), Counters::new(2, 120))]);
        let config = Config::new(vec![Alias {
            name: "shop-tls".into(),
            address: ip,
            owner: String::new(),
            purpose: String::new(),
            interface: None,
            service: None,
            commit_bps: None,
        }]);
        let doc = build(&Inputs {
            entries: &entries,
            names: &names,
            counted: &counted,
            baseline: &baseline,
            host: &host(),
            config: &config,
            ifindexes: &BTreeSet::from([2]),
        });
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"addresses":[{"address":"10.0.0.5","interface":"eth0","alias":"shop-tls","services":[{"cgroup":"/system.slice/nginx.service","unit":"nginx.service","processes":["nginx"],"rx_packets":10,"rx_bytes":1400,"tx_packets":10,"tx_bytes":5200}],"unserved":{"rx_packets":3,"rx_bytes":180}}]}"#
        );
    }
}
