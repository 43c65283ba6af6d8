//! `aliasstat dump`: the raw counters as a table or as JSON.

use serde::Serialize;

use crate::{
    bpf::counters::Snapshot,
    commands::table,
    inventory::interfaces::{self, Interfaces},
};

#[derive(Serialize)]
struct Dump {
    addresses: Vec<AddressRow>,
    other: Vec<OtherRow>,
}

#[derive(Serialize)]
struct AddressRow {
    interface: String,
    address: String,
    direction: &'static str,
    packets: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct OtherRow {
    interface: String,
    direction: &'static str,
    kind: &'static str,
    packets: u64,
    bytes: u64,
}

/// The rows, with each interface index named once by `source`.
fn rows(snap: &Snapshot, source: &impl Interfaces) -> Dump {
    let indexes = snap.addresses.iter().map(|a| a.ifindex);
    let names = interfaces::names(source, indexes.chain(snap.other.iter().map(|o| o.ifindex)));
    let name = |index| names[&index].clone();
    Dump {
        addresses: snap
            .addresses
            .iter()
            .map(|a| AddressRow {
                interface: name(a.ifindex),
                address: a.address.to_string(),
                direction: a.direction.as_str(),
                packets: a.counters.packets,
                bytes: a.counters.bytes,
            })
            .collect(),
        other: snap
            .other
            .iter()
            .map(|o| OtherRow {
                interface: name(o.ifindex),
                direction: o.direction.as_str(),
                kind: o.kind.as_str(),
                packets: o.counters.packets,
                bytes: o.counters.bytes,
            })
            .collect(),
    }
}

/// One line of JSON: `{"addresses":[…],"other":[…]}`.
pub fn json(snap: &Snapshot, source: &impl Interfaces) -> String {
    serde_json::to_string(&rows(snap, source)).expect("plain structs always serialize")
}

/// Two aligned tables: per-address counts, then the other buckets.
pub fn table(snap: &Snapshot, source: &impl Interfaces) -> String {
    let dump = rows(snap, source);
    let mut addresses = vec![[
        "INTERFACE".into(),
        "DIR".into(),
        "ADDRESS".into(),
        "PACKETS".into(),
        "BYTES".into(),
    ]];
    addresses.extend(dump.addresses.into_iter().map(|r| {
        [
            r.interface,
            r.direction.into(),
            r.address,
            r.packets.to_string(),
            r.bytes.to_string(),
        ]
    }));
    let mut other = vec![[
        "INTERFACE".into(),
        "DIR".into(),
        "BUCKET".into(),
        "PACKETS".into(),
        "BYTES".into(),
    ]];
    other.extend(dump.other.into_iter().map(|r| {
        [
            r.interface,
            r.direction.into(),
            r.kind.into(),
            r.packets.to_string(),
            r.bytes.to_string(),
        ]
    }));
    const RIGHT: [bool; 5] = [false, false, false, true, true];
    let mut out = table::render(&addresses, RIGHT);
    out.push('\n');
    out.push_str(&table::render(&other, RIGHT));
    out
}

#[cfg(test)]
mod tests {
    use common::{Counters, Direction, OtherKind};

    use super::*;
    use crate::{
        bpf::counters::{AddressCount, OtherCount},
        inventory::interfaces::tests::Fixed,
    };

    fn sample() -> Snapshot {
        Snapshot {
            addresses: vec![
                AddressCount {
                    ifindex: 2,
                    direction: Direction::Rx,
                    address: "192.168.1.100".parse().unwrap(),
                    counters: Counters::new(3, 426),
                },
                AddressCount {
                    ifindex: 2,
                    direction: Direction::Tx,
                    address: "2001:0db8:0000::0001".parse().unwrap(),
                    counters: Counters::new(1, 1240),
                },
            ],
            other: vec![OtherCount {
                ifindex: 2,
                direction: Direction::Rx,
                kind: OtherKind::NonIp,
                counters: Counters::new(2, 84),
            }],
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let source = Fixed::new(&[("eth0", 2)]);
        let out = json(&sample(), &source);
        // Three rows on one interface: named once.
        assert_eq!(*source.asked.borrow(), [2]);
        assert_eq!(
            out,
            r#"{"addresses":[{"interface":"eth0","address":"192.168.1.100","direction":"rx","packets":3,"bytes":426},{"interface":"eth0","address":"2001:db8::1","direction":"tx","packets":1,"bytes":1240}],"other":[{"interface":"eth0","direction":"rx","kind":"non_ip","packets":2,"bytes":84}]}"#
        );
    }

    #[test]
    fn table_aligns_columns() {
        // Interface 2 is gone: it is shown by its index.
        let out = table(&sample(), &Fixed::default());
        assert_eq!(
            out,
            "INTERFACE  DIR  ADDRESS        PACKETS  BYTES\n\
             if2        rx   192.168.1.100        3    426\n\
             if2        tx   2001:db8::1          1   1240\n\
             \n\
             INTERFACE  DIR  BUCKET  PACKETS  BYTES\n\
             if2        rx   non_ip        2     84\n"
        );
    }
}
