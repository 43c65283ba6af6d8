//! The alias file's `service` against the traffic: what `aliasstat check`
//! reports and `aliasstat_service_drift` exports. Both judge the counts
//! since the daemon started, so a drift holds until the file is corrected
//! or the daemon restarts.

use std::net::IpAddr;

use super::ServicesDoc;
use crate::inventory::Config;

/// What the observed unit did that the file does not document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    /// It received on an alias documented for another unit.
    Receives,
    /// The documented unit sent from an address that is not its alias.
    Sends,
}

/// One disagreement, about one alias that documents a service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceDrift {
    /// Where the traffic was seen.
    pub address: IpAddr,
    /// The alias whose `service` the traffic contradicts, and its address.
    pub alias: String,
    pub alias_address: IpAddr,
    pub documented: String,
    /// The unit (or cgroup path) seen, as `aliasstat services` labels it.
    pub observed: String,
    pub seen: Seen,
}

/// Every drift of `doc` against `config`, sorted, each once. The aliases
/// are `config`'s, not the ones `doc` carries: `check` judges the file it
/// is given, which the daemon may not have loaded yet.
pub fn find(doc: &ServicesDoc, config: &Config) -> Vec<ServiceDrift> {
    let documented_at = |address| config.alias(address).and_then(|a| a.service.as_deref());
    let mut out = Vec::new();
    for a in &doc.addresses {
        if let Some(alias) = config.alias(a.address)
            && let Some(documented) = &alias.service
        {
            let others = a
                .services
                .iter()
                .filter(|s| s.rx_packets > 0 && s.label() != documented);
            out.extend(others.map(|s| ServiceDrift {
                address: a.address,
                alias: alias.name.clone(),
                alias_address: alias.address,
                documented: documented.clone(),
                observed: s.label().to_owned(),
                seen: Seen::Receives,
            }));
        }
        for alias in config.aliases() {
            let Some(unit) = &alias.service else {
                continue;
            };
            // Another alias of the same unit is one of its own addresses.
            let sends = a.address != alias.address
                && documented_at(a.address) != Some(unit.as_str())
                && a.services
                    .iter()
                    .any(|s| s.tx_packets > 0 && s.label() == unit);
            if sends {
                out.push(ServiceDrift {
                    address: a.address,
                    alias: alias.name.clone(),
                    alias_address: alias.address,
                    documented: unit.clone(),
                    observed: unit.clone(),
                    seen: Seen::Sends,
                });
            }
        }
    }
    out.sort();
    // One address on two interfaces is two entries of `doc`.
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        inventory::Alias,
        services::{AddressServices, Service, Unserved},
    };

    fn alias(name: &str, address: &str, service: Option<&str>) -> Alias {
        Alias {
            name: name.into(),
            address: address.parse().unwrap(),
            owner: String::new(),
            purpose: String::new(),
            interface: None,
            service: service.map(Into::into),
            commit_bps: None,
        }
    }

    /// `(unit, rx_packets, tx_packets)` of one address.
    type Units<'a> = &'a [(&'a str, u64, u64)];

    fn doc(addresses: &[(&str, Units<'_>)]) -> ServicesDoc {
        let service = |&(unit, rx, tx): &(&str, u64, u64)| Service {
            cgroup: format!("/{unit}"),
            unit: Some(unit.into()),
            processes: vec![],
            rx_packets: rx,
            rx_bytes: rx * 100,
            tx_packets: tx,
            tx_bytes: tx * 100,
        };
        ServicesDoc {
            addresses: addresses
                .iter()
                .map(|(address, services)| AddressServices {
                    address: address.parse().unwrap(),
                    interface: "eth0".into(),
                    alias: None,
                    services: services.iter().map(service).collect(),
                    unserved: Unserved::default(),
                })
                .collect(),
        }
    }

    #[test]
    fn finds_other_receivers_and_stray_senders() {
        let config = Config::new(vec![
            alias("web", "10.0.0.10", Some("mail.service")),
            alias("batch", "10.0.0.12", Some("batch.service")),
            alias("batch-2", "10.0.0.13", Some("batch.service")),
            alias("plain", "10.0.0.14", None),
        ]);
        let seen = doc(&[
            ("10.0.0.2", &[("batch.service", 2, 2)]),
            (
                "10.0.0.10",
                &[("web.service", 5, 5), ("mail.service", 1, 0)],
            ),
            ("10.0.0.12", &[("batch.service", 4, 4)]),
            ("10.0.0.13", &[("batch.service", 1, 1)]),
            ("10.0.0.14", &[("cron.service", 3, 3)]),
        ]);
        let found: Vec<_> = find(&seen, &config)
            .into_iter()
            .map(|d| {
                (
                    d.address.to_string(),
                    d.alias,
                    d.documented,
                    d.observed,
                    d.seen,
                )
            })
            .collect();
        let expected = [
            (
                "10.0.0.2",
                "batch",
                "batch.service",
                "batch.service",
                Seen::Sends,
            ),
            (
                "10.0.0.2",
                "batch-2",
                "batch.service",
                "batch.service",
                Seen::Sends,
            ),
            (
                "10.0.0.10",
                "web",
                "mail.service",
                "web.service",
                Seen::Receives,
            ),
        ]
        .map(|(a, b, c, d, seen)| (a.into(), b.into(), c.into(), d.into(), seen));
        assert_eq!(found, expected);
        let fixed = Config::new(vec![alias("web", "10.0.0.10", Some("web.service"))]);
        let only_web = doc(&[("10.0.0.10", &[("web.service", 5, 5)])]);
        assert_eq!(find(&only_web, &fixed), []);
    }
}
