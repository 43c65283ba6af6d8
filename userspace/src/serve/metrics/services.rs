//! The per-service families: what each unit's sockets received and sent
//! on each local address, within `--max-service-series`, and what arrived
//! for each address that no socket took.

use bytes::BytesMut;

use super::family::{Family, Labels};
use crate::{
    inventory::Config,
    services::{ServicesDoc, drift, series::Series},
};

pub const SERVICE: Labels<4> = Labels(["address", "alias", "interface", "unit"]);
pub const ADDRESS: Labels<3> = Labels(["address", "alias", "interface"]);

pub static DRIFT: Family<4> = Family::gauge(
    "aliasstat_service_drift",
    "1 while traffic since the daemon started contradicts the alias file's `service` of an alias: unit `observed` received on the alias (address) documented for unit `documented`, or the documented unit sent from `address`, which is not its alias. `aliasstat check` lists the same. No series while file and traffic agree.",
    Labels(["address", "alias", "documented", "observed"]),
);

pub static RECEIVE_BYTES: Family<4> = Family::counter(
    "aliasstat_service_receive_bytes_total",
    "IP-layer bytes delivered to sockets of this systemd unit (or cgroup path, where the cgroup has no unit) for this local address on this interface. unit=\"other\" sums the units past --max-service-series.",
    SERVICE,
);

pub static RECEIVE_PACKETS: Family<4> = Family::counter(
    "aliasstat_service_receive_packets_total",
    "Packets delivered to sockets of this systemd unit (or cgroup path) for this local address on this interface, counted as wire packets like aliasstat_receive_packets_total.",
    SERVICE,
);

pub static TRANSMIT_BYTES: Family<4> = Family::counter(
    "aliasstat_service_transmit_bytes_total",
    "IP-layer bytes sent from sockets of this systemd unit (or cgroup path) with this local source address on this interface.",
    SERVICE,
);

pub static TRANSMIT_PACKETS: Family<4> = Family::counter(
    "aliasstat_service_transmit_packets_total",
    "Packets sent from sockets of this systemd unit (or cgroup path) with this local source address on this interface, a GSO packet counting as its wire packets.",
    SERVICE,
);

pub static UNSERVED_BYTES: Family<3> = Family::counter(
    "aliasstat_unserved_receive_bytes_total",
    "IP-layer bytes received for this local address that no local socket took (closed ports, ICMP echo the kernel answers, drops before delivery), since the daemon started.",
    ADDRESS,
);

pub static UNSERVED_PACKETS: Family<3> = Family::counter(
    "aliasstat_unserved_receive_packets_total",
    "Packets received for this local address that no local socket took (UDP or TCP to a closed port, ICMP echo the kernel answers, drops before delivery), since the daemon started.",
    ADDRESS,
);

/// A family and the field of a [`Series`] it exports.
type Field = (&'static Family<4>, fn(&Series) -> u64);

/// The four per-service families, in name order.
pub fn write(out: &mut BytesMut, series: &[Series]) {
    let families: [Field; 4] = [
        (&RECEIVE_BYTES, |s| s.rx_bytes),
        (&RECEIVE_PACKETS, |s| s.rx_packets),
        (&TRANSMIT_BYTES, |s| s.tx_bytes),
        (&TRANSMIT_PACKETS, |s| s.tx_packets),
    ];
    for (family, value) in families {
        let mut section = family.open(out);
        for s in series {
            let address = s.address.to_string();
            section.sample([&address, &s.alias, &s.interface, &s.unit], value(s));
        }
    }
}

/// Where the traffic contradicts the documented services; a drift seen
/// both receiving and sending is one series.
pub fn write_drift(out: &mut BytesMut, doc: &ServicesDoc, config: &Config) {
    let mut found = drift::find(doc, config);
    found.dedup_by(|a, b| {
        (&a.address, &a.alias, &a.documented, &a.observed)
            == (&b.address, &b.alias, &b.documented, &b.observed)
    });
    let mut section = DRIFT.open(out);
    for d in &found {
        let address = d.address.to_string();
        section.sample([&address, &d.alias, &d.documented, &d.observed], true);
    }
}

/// The two unserved families, in name order.
pub fn write_unserved(out: &mut BytesMut, doc: &ServicesDoc) {
    for (family, bytes) in [(&UNSERVED_BYTES, true), (&UNSERVED_PACKETS, false)] {
        let mut section = family.open(out);
        for a in &doc.addresses {
            let address = a.address.to_string();
            let alias = a.alias.as_deref().unwrap_or("");
            let value = if bytes {
                a.unserved.rx_bytes
            } else {
                a.unserved.rx_packets
            };
            section.sample([&address, alias, &a.interface], value);
        }
    }
}
