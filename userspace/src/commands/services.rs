//! `aliasstat services`: which service (cgroup, systemd unit) received and
//! sent what on each local address, and what arrived that none took; or,
//! with `--unit`, every address one unit's traffic used.

use std::net::IpAddr;

use serde::Serialize;

use crate::{
    commands::table,
    services::{AddressServices, ServicesDoc},
};

/// Which part of the matrix to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// An address, or the name of the alias documented for one.
    Address(String),
    /// One unit (or cgroup path) and the addresses of its traffic.
    Unit(String),
}

/// The addresses `selection` keeps; all of them for `--unit`, whose pivot
/// [`by_unit`] then takes.
pub fn select(doc: ServicesDoc, selection: &Selection) -> Vec<AddressServices> {
    doc.addresses
        .into_iter()
        .filter(|a| match selection {
            Selection::All | Selection::Unit(_) => true,
            Selection::Address(what) => {
                what.parse::<IpAddr>().ok() == Some(a.address)
                    || a.alias.as_deref() == Some(what.as_str())
            }
        })
        .collect()
}

/// One address that a unit's traffic used, for `--unit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitAddress {
    pub address: IpAddr,
    pub interface: String,
    pub alias: Option<String>,
    pub cgroup: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// The addresses `unit` (a unit name or a cgroup path) received on and
/// sent from.
pub fn by_unit(addresses: &[AddressServices], unit: &str) -> Vec<UnitAddress> {
    addresses
        .iter()
        .flat_map(|a| {
            a.services
                .iter()
                .filter(|s| s.label() == unit || s.cgroup == unit)
                .map(|s| UnitAddress {
                    address: a.address,
                    interface: a.interface.clone(),
                    alias: a.alias.clone(),
                    cgroup: s.cgroup.clone(),
                    rx_packets: s.rx_packets,
                    rx_bytes: s.rx_bytes,
                    tx_packets: s.tx_packets,
                    tx_bytes: s.tx_bytes,
                })
        })
        .collect()
}

pub fn json(addresses: Vec<AddressServices>) -> String {
    serde_json::to_string(&ServicesDoc { addresses }).expect("plain structs always serialize")
}

#[derive(Serialize)]
struct UnitDoc<'a> {
    unit: &'a str,
    addresses: &'a [UnitAddress],
}

pub fn unit_json(unit: &str, addresses: &[UnitAddress]) -> String {
    serde_json::to_string(&UnitDoc { unit, addresses }).expect("plain structs always serialize")
}

const HEADER: [&str; 8] = [
    "ADDRESS",
    "INTERFACE",
    "ALIAS",
    "SERVICE",
    "RX_PACKETS",
    "RX_BYTES",
    "TX_PACKETS",
    "TX_BYTES",
];
const RIGHT: [bool; 8] = [false, false, false, false, true, true, true, true];

/// One row per (address, service), then the address's `(unserved)` row.
pub fn table(addresses: &[AddressServices]) -> String {
    let mut rows = vec![HEADER.map(String::from)];
    for a in addresses {
        let row = |service: String, counts: [u64; 4]| {
            let [rp, rb, tp, tb] = counts.map(|n| n.to_string());
            [
                a.address.to_string(),
                a.interface.clone(),
                a.alias.clone().unwrap_or_else(|| "-".into()),
                service,
                rp,
                rb,
                tp,
                tb,
            ]
        };
        for s in &a.services {
            // A slice or the root holds every process under it: a few
            // names say enough, --json has them all.
            let name = match s.processes.as_slice() {
                [] => s.label().to_owned(),
                procs if procs.len() > 3 => format!("{} ({},…)", s.label(), procs[..3].join(",")),
                procs => format!("{} ({})", s.label(), procs.join(",")),
            };
            rows.push(row(
                name,
                [s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes],
            ));
        }
        let u = a.unserved;
        rows.push(row("(unserved)".into(), [u.rx_packets, u.rx_bytes, 0, 0]));
    }
    table::render(&rows, RIGHT)
}

/// `--unit`: one row per address the unit used.
pub fn unit_table(addresses: &[UnitAddress]) -> String {
    let mut rows = vec![HEADER.map(String::from)];
    rows[0][3] = "CGROUP".into();
    rows.extend(addresses.iter().map(|u| {
        [
            u.address.to_string(),
            u.interface.clone(),
            u.alias.clone().unwrap_or_else(|| "-".into()),
            u.cgroup.clone(),
            u.rx_packets.to_string(),
            u.rx_bytes.to_string(),
            u.tx_packets.to_string(),
            u.tx_bytes.to_string(),
        ]
    }));
    table::render(&rows, RIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{Service, Unserved};

    fn doc() -> ServicesDoc {
        let service = |unit: &str, n| Service {
            cgroup: format!("/t/{unit}"),
            unit: Some(unit.into()),
            processes: vec!["svcpeer".into()],
            rx_packets: n,
            rx_bytes: n * 100,
            tx_packets: n,
            tx_bytes: n * 100,
        };
        let address = |ip: &str, alias: &str, services| AddressServices {
            address: ip.parse().unwrap(),
            interface: "eth0".into(),
            alias: Some(alias.into()),
            services,
            unserved: Unserved {
                rx_packets: 1,
                rx_bytes: 28,
            },
        };
        ServicesDoc {
            addresses: vec![
                address("10.0.0.5", "web", vec![service("web.service", 3)]),
                address("10.0.0.6", "batch", vec![service("batch.service", 2)]),
            ],
        }
    }

    #[test]
    fn selections_and_pivot() {
        let by_alias = select(doc(), &Selection::Address("web".into()));
        assert_eq!(by_alias.len(), 1);
        let by_ip = select(doc(), &Selection::Address("10.0.0.6".into()));
        assert_eq!(by_ip[0].alias.as_deref(), Some("batch"));
        let all = select(doc(), &Selection::Unit("batch.service".into()));
        let pivot = by_unit(&all, "batch.service");
        assert_eq!(pivot.len(), 1);
        assert_eq!(pivot[0].address.to_string(), "10.0.0.6");
        assert_eq!(
            table(&by_alias),
            "\
ADDRESS   INTERFACE  ALIAS  SERVICE                RX_PACKETS  RX_BYTES  TX_PACKETS  TX_BYTES
10.0.0.5  eth0       web    web.service (svcpeer)           3       300           3       300
10.0.0.5  eth0       web    (unserved)                      1        28           0         0
"
        );
    }
}
