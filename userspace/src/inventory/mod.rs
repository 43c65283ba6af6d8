//! What each address is: configured on this host (rtnetlink), documented
//! in the alias file, both, or neither.

mod changes;
mod config;
mod drift;
pub(crate) mod host;
pub mod interfaces;
mod netlink;
mod state;
mod view;

pub use changes::{Change, changes};
pub use config::{
    Alias, Config, ConfigError, DEFAULT_PATH, Location, load as load_config, parse as parse_config,
};
pub use drift::{Drift, drift};
pub use host::{HostAddress, HostTable, Scope};
pub use netlink::{NetlinkError, dump, watch};
pub use state::{State, UnknownState, state};
pub use view::{Row, rows};

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
            service: None,
            commit_bps: None,
        }
    }

    #[test]
    fn states_follow_file_and_host() {
        let host = host();
        let config = Config::new(vec![
            alias("shop", "192.168.1.100", None),
            alias("vip", "192.168.1.200", None),
        ]);
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
        let config = Config::new(vec![alias("shop", "192.168.1.100", None)]);
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
        let config = Config::new(vec![
            alias("shop", "192.168.1.100", Some("eth0")),
            alias("dns", "192.0.2.53", Some("eth0")),
            alias("gone", "192.168.1.200", None),
            alias("local", "127.0.0.1", None),
        ]);
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

        let agreeing = Config::new(vec![
            alias("shop", "192.168.1.100", Some("eth0")),
            alias("dns", "192.0.2.53", Some("lo")),
            alias("mgmt", "192.168.1.10", None),
        ]);
        assert!(drift(&host, &agreeing).is_empty());
    }
}
