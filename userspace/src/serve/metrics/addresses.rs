//! The per-address families: packets and bytes of every address with a
//! series of its own, per interface and direction.

use std::net::IpAddr;

use bytes::BytesMut;
use common::{Counters, Direction};

use super::{
    family::{Arena, Family, Labels, Rendered},
    labels::{Interface, LabelCache},
};
use crate::bpf::counters::AddressCount;

pub const ADDRESS: Labels<3> = Labels(["address", "alias", "interface"]);

pub static RECEIVE_PACKETS: Family<3> = Family::counter(
    "aliasstat_receive_packets_total",
    "Packets received for this destination address on this interface (the interface where they were seen). A GSO/GRO packet counts as the wire packets it stands for. alias is the documented name, empty when undocumented.",
    ADDRESS,
);

pub static RECEIVE_BYTES: Family<3> = Family::counter(
    "aliasstat_receive_bytes_total",
    "IP-layer bytes (IP header plus payload) received for this destination address on this interface.",
    ADDRESS,
);

pub static TRANSMIT_PACKETS: Family<3> = Family::counter(
    "aliasstat_transmit_packets_total",
    "Packets sent from this source address on this interface. A GSO packet counts as the wire packets it stands for.",
    ADDRESS,
);

pub static TRANSMIT_BYTES: Family<3> = Family::counter(
    "aliasstat_transmit_bytes_total",
    "IP-layer bytes (IP header plus payload) sent from this source address on this interface.",
    ADDRESS,
);

/// One exported series: an address on an interface (by name) in one
/// direction.
pub struct Series {
    pub address: IpAddr,
    interface: Interface,
    direction: Direction,
    counters: Counters,
    /// In the label cache's text.
    labels: Rendered<3>,
}

/// The listed counts as series, sorted by address. Series are named by
/// interface name and summed over indexes: an interface deleted and
/// created again continues its series instead of restarting it.
pub fn series(listed: &[AddressCount], labels: &mut LabelCache) -> Vec<Series> {
    let mut keyed: Vec<(IpAddr, Interface, Direction, Counters)> = listed
        .iter()
        .map(|c| {
            (
                c.address,
                labels.interface(c.ifindex),
                c.direction,
                c.counters,
            )
        })
        .collect();
    keyed.sort_unstable_by_key(|&(a, i, d, _)| (a, i, d));
    let mut out: Vec<Series> = Vec::with_capacity(keyed.len());
    for (address, interface, direction, counters) in keyed {
        match out.last_mut() {
            Some(s) if (s.address, s.interface, s.direction) == (address, interface, direction) => {
                s.counters += counters;
            }
            _ => out.push(Series {
                address,
                interface,
                direction,
                counters,
                labels: labels.series(address, interface),
            }),
        }
    }
    out
}

/// The two families of `direction`; `text` is the label cache's.
pub fn write(out: &mut BytesMut, direction: Direction, series: &[Series], text: &Arena) {
    let (packets, bytes) = match direction {
        Direction::Rx => (&RECEIVE_PACKETS, &RECEIVE_BYTES),
        Direction::Tx => (&TRANSMIT_PACKETS, &TRANSMIT_BYTES),
    };
    let of = || series.iter().filter(move |s| s.direction == direction);
    // Families in name order: bytes before packets.
    let mut section = bytes.open(out);
    for s in of() {
        section.rendered(text, s.labels, s.counters.bytes);
    }
    let mut section = packets.open(out);
    for s in of() {
        section.rendered(text, s.labels, s.counters.packets);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use netlink_packet_route::{
        RouteNetlinkMessage,
        link::{LinkAttribute, LinkMessage},
    };

    use super::*;
    use crate::{
        bpf::counters::{CounterSource as _, Snapshot},
        inventory::{Alias, Config, HostTable},
    };

    fn link(index: u32, name: &str) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        msg
    }

    /// `vb` was index 5, deleted, and is index 6 now.
    fn recreated_link() -> HostTable {
        let mut host = HostTable::default();
        host.apply(&RouteNetlinkMessage::NewLink(link(5, "vb")));
        host.apply(&RouteNetlinkMessage::DelLink(link(5, "vb")));
        host.apply(&RouteNetlinkMessage::NewLink(link(6, "vb")));
        host
    }

    #[test]
    fn series_sum_interfaces_of_one_name_and_carry_the_alias() {
        let count = |ifindex, direction, ip: &str, packets| AddressCount {
            ifindex,
            direction,
            address: ip.parse().unwrap(),
            counters: Counters::new(packets, packets * 100),
        };
        let source = Snapshot {
            addresses: vec![
                count(5, Direction::Rx, "198.51.100.7", 1),
                count(5, Direction::Tx, "198.51.100.7", 4),
                count(6, Direction::Rx, "198.51.100.7", 2),
                // Unknown to the host table: named by its index.
                count(90001, Direction::Rx, "198.51.100.7", 8),
                count(6, Direction::Rx, "198.51.100.10", 3),
            ],
            other: vec![],
        };
        let config = Config::new(vec![Alias {
            name: "web \"a\"".into(),
            address: "198.51.100.10".parse().unwrap(),
            owner: String::new(),
            purpose: String::new(),
            interface: None,
            service: None,
            commit_bps: None,
        }]);
        let mut labels = LabelCache::default();
        labels.follow(&Arc::new(recreated_link()), &Arc::new(config));
        let series = series(&source.snapshot().unwrap().addresses, &mut labels);
        let mut out = BytesMut::new();
        write(&mut out, Direction::Rx, &series, labels.text());
        let text = String::from_utf8(out.to_vec()).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                r#"aliasstat_receive_bytes_total{address="198.51.100.7",alias="",interface="vb"} 300"#,
                r#"aliasstat_receive_bytes_total{address="198.51.100.7",alias="",interface="if90001"} 800"#,
                r#"aliasstat_receive_bytes_total{address="198.51.100.10",alias="web \"a\"",interface="vb"} 300"#,
                r#"aliasstat_receive_packets_total{address="198.51.100.7",alias="",interface="vb"} 3"#,
                r#"aliasstat_receive_packets_total{address="198.51.100.7",alias="",interface="if90001"} 8"#,
                r#"aliasstat_receive_packets_total{address="198.51.100.10",alias="web \"a\"",interface="vb"} 3"#,
            ]
        );
    }
}
