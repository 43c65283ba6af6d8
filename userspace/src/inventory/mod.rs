//! What each address is: configured on this host (rtnetlink), documented
//! in the alias file, both, or neither.

mod config;
mod host;
pub mod interfaces;
mod netlink;
mod view;

use std::{fmt, net::IpAddr};

pub use config::{
    Alias, Config, ConfigError, DEFAULT_PATH, Location, load as load_config, parse as parse_config,
};
pub use host::{HostAddress, HostTable, Scope};
pub use netlink::{NetlinkError, dump, watch};
use serde::Serialize;
pub use view::{Row, Traffic, rows};

/// The state of an address, from whether the file documents it and
/// whether the host holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// In the file and configured on this host.
    Documented,
    /// In the file, not on this host (a VIP the peer holds now).
    Absent,
    /// On this host, not in the file.
    Undocumented,
    /// Neither: broadcast, multicast, or traffic for an address that left.
    Foreign,
}

impl State {
    pub const fn of(documented: bool, present: bool) -> Self {
        match (documented, present) {
            (true, true) => Self::Documented,
            (true, false) => Self::Absent,
            (false, true) => Self::Undocumented,
            (false, false) => Self::Foreign,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Documented => "documented",
            Self::Absent => "absent",
            Self::Undocumented => "undocumented",
            Self::Foreign => "foreign",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address that appeared on or left the host.
#[derive(Debug, PartialEq, Eq)]
pub struct Change<'a> {
    pub added: bool,
    pub entry: &'a HostAddress,
    /// The state after the change.
    pub state: State,
    pub alias: Option<&'a str>,
}

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let (verb, prep) = if self.added {
            ("added", "on")
        } else {
            ("removed", "from")
        };
        write!(
            f,
            "address {}/{} {verb} {prep} {}",
            e.address, e.prefix_len, e.interface
        )?;
        if let Some(label) = e.label.as_deref().filter(|l| *l != e.interface) {
            write!(f, " (label {label})")?;
        }
        match self.alias {
            Some(alias) => write!(f, ": alias \"{alias}\" is {}", self.state),
            None => write!(f, ": {}", self.state),
        }
    }
}

/// What differs between two host tables, in address order.
pub fn changes<'a>(
    before: &'a HostTable,
    now: &'a HostTable,
    config: &'a Config,
) -> Vec<Change<'a>> {
    let change = |added, entry: &'a HostAddress, table: &HostTable| Change {
        added,
        entry,
        state: state(table, config, entry.address),
        alias: config.alias(entry.address).map(|a| a.name.as_str()),
    };
    let gone = before
        .addresses()
        .filter(|e| !now.has(e.ifindex, e.address))
        .map(|e| change(false, e, now));
    let new = now
        .addresses()
        .filter(|e| !before.has(e.ifindex, e.address))
        .map(|e| change(true, e, now));
    gone.chain(new).collect()
}

/// Where the file and the host disagree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift<'a> {
    /// Alias-scope addresses on the host that the file does not name.
    pub undocumented: Vec<&'a HostAddress>,
    /// Documented aliases not configured on this host.
    pub missing: Vec<&'a Alias>,
    /// Documented aliases present, but not on the interface the file names.
    pub misplaced: Vec<(&'a Alias, Vec<&'a HostAddress>)>,
}

impl Drift<'_> {
    pub fn is_empty(&self) -> bool {
        self.undocumented.is_empty() && self.missing.is_empty() && self.misplaced.is_empty()
    }
}

/// Compares the file with the host. Host- and link-scope addresses only
/// count when the file names them.
pub fn drift<'a>(host: &'a HostTable, config: &'a Config) -> Drift<'a> {
    let undocumented = host
        .addresses()
        .filter(|a| a.scope.is_alias_scope() && config.alias(a.address).is_none())
        .collect();
    let mut missing = Vec::new();
    let mut misplaced = Vec::new();
    for alias in &config.aliases {
        let holders: Vec<&HostAddress> = host.holders(alias.address).collect();
        if holders.is_empty() {
            missing.push(alias);
        } else if let Some(expected) = &alias.interface
            && !holders.iter().any(|h| &h.interface == expected)
        {
            misplaced.push((alias, holders));
        }
    }
    Drift {
        undocumented,
        missing,
        misplaced,
    }
}

/// The state of `address` against the file and the host.
pub fn state(host: &HostTable, config: &Config, address: IpAddr) -> State {
    State::of(config.alias(address).is_some(), host.holds(address))
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::{
        RouteNetlinkMessage,
        address::{AddressFlags, AddressScope},
    };

    use super::*;
    use crate::inventory::host::tests::{addr, link};

    fn host() -> HostTable {
        let mut t = HostTable::default();
        t.apply(&link(1, "lo"));
        t.apply(&link(2, "eth0"));
        for (index, ip, scope) in [
            (1, "127.0.0.1", AddressScope::Host),
            (1, "::1", AddressScope::Host),
            (1, "192.0.2.53", AddressScope::Universe),
            (2, "192.168.1.10", AddressScope::Universe),
            (2, "192.168.1.100", AddressScope::Universe),
            (2, "fe80::1", AddressScope::Link),
        ] {
            t.apply(&RouteNetlinkMessage::NewAddress(addr(
                index,
                ip,
                24,
                None,
                AddressFlags::Permanent,
                scope,
            )));
        }
        t
    }

    fn alias(name: &str, address: &str, interface: Option<&str>) -> Alias {
        Alias {
            name: name.into(),
            address: address.parse().unwrap(),
            owner: "ops".into(),
            purpose: String::new(),
            interface: interface.map(Into::into),
        }
    }

    #[test]
    fn states_follow_file_and_host() {
        let host = host();
        let config = Config {
            aliases: vec![
                alias("shop", "192.168.1.100", None),
                alias("vip", "192.168.1.200", None),
            ],
        };
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(
            state(&host, &config, ip("192.168.1.100")),
            State::Documented
        );
        assert_eq!(state(&host, &config, ip("192.168.1.200")), State::Absent);
        assert_eq!(
            state(&host, &config, ip("192.168.1.10")),
            State::Undocumented
        );
        assert_eq!(state(&host, &config, ip("192.168.1.255")), State::Foreign);
    }

    #[test]
    fn changes_name_the_address_and_its_new_state() {
        let before = host();
        let mut now = before.clone();
        now.apply(&RouteNetlinkMessage::NewAddress(addr(
            2,
            "192.168.1.101",
            24,
            Some("eth0:1"),
            AddressFlags::Secondary,
            AddressScope::Universe,
        )));
        now.apply(&RouteNetlinkMessage::DelAddress(addr(
            2,
            "192.168.1.100",
            24,
            None,
            AddressFlags::Permanent,
            AddressScope::Universe,
        )));
        let config = Config {
            aliases: vec![alias("shop", "192.168.1.100", None)],
        };
        let lines: Vec<String> = changes(&before, &now, &config)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "address 192.168.1.100/24 removed from eth0: alias \"shop\" is absent",
                "address 192.168.1.101/24 added on eth0 (label eth0:1): undocumented",
            ]
        );
    }

    #[test]
    fn drift_ignores_host_and_link_scope_unless_named() {
        let host = host();
        let config = Config {
            aliases: vec![
                alias("shop", "192.168.1.100", Some("eth0")),
                alias("dns", "192.0.2.53", Some("eth0")),
                alias("gone", "192.168.1.200", None),
                alias("local", "127.0.0.1", None),
            ],
        };
        let d = drift(&host, &config);
        let undocumented: Vec<String> = d
            .undocumented
            .iter()
            .map(|a| a.address.to_string())
            .collect();
        assert_eq!(undocumented, ["192.168.1.10"]);
        let missing: Vec<&str> = d.missing.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(missing, ["gone"]);
        let misplaced: Vec<(&str, Vec<&str>)> = d
            .misplaced
            .iter()
            .map(|(a, h)| {
                (
                    a.name.as_str(),
                    h.iter().map(|h| h.interface.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(misplaced, [("dns", vec!["lo"])]);
        assert!(!d.is_empty());

        let agreeing = Config {
            aliases: vec![
                alias("shop", "192.168.1.100", Some("eth0")),
                alias("dns", "192.0.2.53", Some("lo")),
                alias("mgmt", "192.168.1.10", None),
            ],
        };
        assert!(drift(&host, &agreeing).is_empty());
    }
}
