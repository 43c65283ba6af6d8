//! `aliasstat dump --json`, parsed.

use std::{
    collections::BTreeMap,
    fmt,
    iter::Sum,
    net::IpAddr,
    ops::{Add, AddAssign},
};

use serde::Deserialize;

use crate::frames::{UDP_HLEN, ip_header_len};

/// Packets and bytes: what every counter holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

impl Count {
    pub const fn new(packets: u64, bytes: u64) -> Self {
        Self { packets, bytes }
    }

    /// One packet of `bytes`.
    pub const fn one(bytes: u64) -> Self {
        Self::new(1, bytes)
    }

    /// One UDP datagram with `payload` bytes to or from `addr`, as counted
    /// at the IP layer.
    pub fn datagram(addr: IpAddr, payload: usize) -> Self {
        Self::one((ip_header_len(addr) + UDP_HLEN + payload) as u64)
    }

    /// `n` times this count (a datagram's, say).
    pub const fn times(self, n: u64) -> Self {
        Self::new(n * self.packets, n * self.bytes)
    }
}

impl Add for Count {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self::new(self.packets + rhs.packets, self.bytes + rhs.bytes)
    }
}

impl AddAssign for Count {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sum for Count {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pkts / {} B", self.packets, self.bytes)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    Rx,
    Tx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtherKind {
    NonIp,
    Overflow,
    /// Idle foreign entries the daemon moved out of the address map.
    Evicted,
}

/// The whole JSON document. Unknown fields are errors: the shape is a
/// contract, and a drift in it should fail loudly here.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub addresses: Vec<AddressRow>,
    pub other: Vec<OtherRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRow {
    pub interface: String,
    pub address: IpAddr,
    pub direction: Dir,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherRow {
    pub interface: String,
    pub direction: Dir,
    pub kind: OtherKind,
    pub packets: u64,
    pub bytes: u64,
}

impl AddressRow {
    pub const fn count(&self) -> Count {
        Count::new(self.packets, self.bytes)
    }
}

impl OtherRow {
    pub const fn count(&self) -> Count {
        Count::new(self.packets, self.bytes)
    }
}

/// Per-address counts of one interface and direction.
pub type AddressTable = BTreeMap<IpAddr, Count>;

impl Snapshot {
    pub fn parse(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }

    /// Every address counted on `interface` in `dir` that `keep` accepts.
    /// Rows for the same key are summed, although dump should never repeat
    /// one.
    pub fn addresses(
        &self,
        interface: &str,
        dir: Dir,
        keep: impl Fn(&IpAddr) -> bool,
    ) -> AddressTable {
        let mut table = AddressTable::new();
        for row in &self.addresses {
            if row.interface == interface && row.direction == dir && keep(&row.address) {
                *table.entry(row.address).or_default() += row.count();
            }
        }
        table
    }

    /// A `non_ip` or `overflow` bucket; zero when dump left it out.
    pub fn other(&self, interface: &str, dir: Dir, kind: OtherKind) -> Count {
        self.other
            .iter()
            .filter(|r| r.interface == interface && r.direction == dir && r.kind == kind)
            .map(OtherRow::count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"{"addresses":[{"interface":"eth0","address":"192.168.1.100","direction":"rx","packets":3,"bytes":426}],"other":[{"interface":"eth0","direction":"rx","kind":"non_ip","packets":2,"bytes":84}]}"#;

    #[test]
    fn parses_the_documented_shape() {
        let s = Snapshot::parse(CONTRACT_EXAMPLE).unwrap();
        let ip: IpAddr = "192.168.1.100".parse().unwrap();
        assert_eq!(
            s.addresses("eth0", Dir::Rx, |_| true),
            AddressTable::from([(ip, Count::new(3, 426))])
        );
        assert!(s.addresses("eth0", Dir::Tx, |_| true).is_empty());
        assert_eq!(
            s.other("eth0", Dir::Rx, OtherKind::NonIp),
            Count::new(2, 84)
        );
        assert_eq!(
            s.other("eth0", Dir::Rx, OtherKind::Overflow),
            Count::default()
        );
    }

    #[test]
    fn rejects_drift_from_the_shape() {
        for bad in [
            r#"{"addresses":[],"other":[],"extra":1}"#,
            r#"{"addresses":[{"interface":"e","address":"::1","direction":"in","packets":1,"bytes":1}],"other":[]}"#,
            r#"{"addresses":[{"interface":"e","address":"::1","direction":"rx","packets":1}],"other":[]}"#,
            r#"{"addresses":[],"other":[{"interface":"e","direction":"rx","kind":"nonip","packets":1,"bytes":1}]}"#,
            r#"{"addresses":[{"interface":"e","address":"1.2.3","direction":"rx","packets":1,"bytes":1}],"other":[]}"#,
        ] {
            assert!(Snapshot::parse(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn filters_and_sums() {
        let s = Snapshot::parse(
            r#"{"addresses":[
                {"interface":"a","address":"10.0.0.1","direction":"rx","packets":1,"bytes":10},
                {"interface":"a","address":"fd00::1","direction":"rx","packets":2,"bytes":20},
                {"interface":"b","address":"10.0.0.1","direction":"rx","packets":4,"bytes":40}],
              "other":[
                {"interface":"a","direction":"tx","kind":"overflow","packets":5,"bytes":50}]}"#,
        )
        .unwrap();
        let v4 = s.addresses("a", Dir::Rx, IpAddr::is_ipv4);
        assert_eq!(v4.values().copied().sum::<Count>(), Count::new(1, 10));
        assert_eq!(s.addresses("a", Dir::Rx, |_| true).len(), 2);
        assert_eq!(
            s.other("a", Dir::Tx, OtherKind::Overflow),
            Count::new(5, 50)
        );
    }
}
