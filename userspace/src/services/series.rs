//! Bounding the per-service series: the first `--max-service-series`
//! (address, interface, unit) triples seen get series of their own, for
//! good; the rest of each address is summed into `unit="other"`. A listed
//! triple never leaves the list and the kernel's counts only grow, so no
//! series, "other" included, ever goes down.

use std::{collections::HashSet, net::IpAddr};

use super::ServicesDoc;

/// The unit label of what is summed past the limit.
pub const OTHER: &str = "other";

/// One exported (address, unit) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    pub address: IpAddr,
    pub interface: String,
    pub alias: String,
    pub unit: String,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

#[derive(Debug)]
pub struct Budget {
    limit: usize,
    listed: HashSet<(IpAddr, String, String)>,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            listed: HashSet::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The series of `doc`: listed pairs as they are, the others of each
    /// address summed into one `other` series.
    pub fn split(&mut self, doc: &ServicesDoc) -> Vec<Series> {
        let mut out = Vec::new();
        for a in &doc.addresses {
            let blank = |unit: &str| Series {
                address: a.address,
                interface: a.interface.clone(),
                alias: a.alias.clone().unwrap_or_default(),
                unit: unit.to_owned(),
                rx_packets: 0,
                rx_bytes: 0,
                tx_packets: 0,
                tx_bytes: 0,
            };
            let mut other = blank(OTHER);
            for s in &a.services {
                let key = (a.address, a.interface.clone(), s.label().to_owned());
                let own = self.listed.contains(&key)
                    || (self.listed.len() < self.limit && self.listed.insert(key));
                let mut series = blank(s.label());
                let into = if own { &mut series } else { &mut other };
                into.rx_packets += s.rx_packets;
                into.rx_bytes += s.rx_bytes;
                into.tx_packets += s.tx_packets;
                into.tx_bytes += s.tx_bytes;
                if own {
                    out.push(series);
                }
            }
            if other.rx_packets + other.tx_packets > 0 {
                out.push(other);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{AddressServices, Service, Unserved};

    fn doc(units: &[(&str, u64)]) -> ServicesDoc {
        ServicesDoc {
            addresses: vec![AddressServices {
                address: "10.0.0.5".parse().unwrap(),
                interface: "eth0".into(),
                alias: None,
                services: units
                    .iter()
                    .map(|&(u, n)| Service {
                        cgroup: format!("/{u}"),
                        unit: Some(u.into()),
                        processes: vec![],
                        rx_packets: n,
                        rx_bytes: n * 100,
                        tx_packets: 0,
                        tx_bytes: 0,
                    })
                    .collect(),
                unserved: Unserved::default(),
            }],
        }
    }

    #[test]
    fn past_the_limit_units_sum_into_other_for_good() {
        let mut budget = Budget::new(1);
        let first = budget.split(&doc(&[("b.service", 2)]));
        assert_eq!(first.len(), 1);
        let later = budget.split(&doc(&[
            ("a.service", 3),
            ("b.service", 5),
            ("c.service", 1),
        ]));
        let units: Vec<(&str, u64)> = later
            .iter()
            .map(|s| (s.unit.as_str(), s.rx_packets))
            .collect();
        assert_eq!(units, [("b.service", 5), ("other", 4)]);
    }
}
