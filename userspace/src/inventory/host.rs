//! The addresses configured on this host, as rtnetlink reports them.
//!
//! [`HostTable::apply`] folds one rtnetlink message into the table; the
//! same function serves the start-up dump and the live events, so both
//! paths agree by construction.

use std::{collections::BTreeMap, fmt, net::IpAddr};

use foldhash::HashMap;
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope},
    link::{LinkAttribute, LinkMessage},
};
use serde::Serialize;

use crate::inventory::interfaces;

/// `ip addr` scope of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Site,
    Link,
    Host,
    Nowhere,
    Other(u8),
}

impl Scope {
    /// Host- and link-scope addresses (127.0.0.0/8, ::1, fe80::/10, …) are
    /// plumbing, not aliases: they never count as drift unless documented.
    pub const fn is_alias_scope(self) -> bool {
        matches!(self, Self::Global | Self::Site)
    }
}

impl From<AddressScope> for Scope {
    fn from(s: AddressScope) -> Self {
        match s {
            AddressScope::Universe => Self::Global,
            AddressScope::Site => Self::Site,
            AddressScope::Link => Self::Link,
            AddressScope::Host => Self::Host,
            AddressScope::Nowhere => Self::Nowhere,
            AddressScope::Other(v) => Self::Other(v),
            _ => Self::Other(u8::from(s)),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global => f.write_str("global"),
            Self::Site => f.write_str("site"),
            Self::Link => f.write_str("link"),
            Self::Host => f.write_str("host"),
            Self::Nowhere => f.write_str("nowhere"),
            Self::Other(v) => write!(f, "{v}"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One address on one interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub ifindex: u32,
    pub interface: String,
    /// IFA_LABEL (`eth0:1`); IPv4 only, and the interface name when unset.
    pub label: Option<String>,
    /// `secondary`, `temporary`, `deprecated`, `tentative`, … as `ip addr`
    /// names them.
    pub flags: Vec<&'static str>,
    pub scope: Scope,
}

/// Every address on the host, keyed by (interface index, address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTable {
    links: BTreeMap<u32, String>,
    /// Names of deleted links: their counts outlive them, and a link
    /// re-created under the same name continues the same series.
    departed: BTreeMap<u32, String>,
    addresses: BTreeMap<(u32, IpAddr), HostAddress>,
    /// The interfaces holding each address, so that asking who holds an
    /// address does not scan the whole table.
    holders: HashMap<IpAddr, Vec<u32>>,
}

impl HostTable {
    /// Folds one rtnetlink message into the table. Messages that are not
    /// about links or addresses are ignored.
    pub fn apply(&mut self, msg: &RouteNetlinkMessage) {
        match msg {
            RouteNetlinkMessage::NewLink(link) => self.new_link(link),
            RouteNetlinkMessage::DelLink(link) => {
                let index = link.header.index;
                if let Some(name) = self.links.remove(&index) {
                    self.departed.insert(index, name);
                }
                // The kernel reports the addresses' removal too, but only
                // for those it still had; dropping them here makes a lost
                // event harmless.
                let gone: Vec<IpAddr> = self
                    .addresses
                    .extract_if(.., |(i, _), _| *i == index)
                    .map(|((_, a), _)| a)
                    .collect();
                for address in gone {
                    self.unhold(index, address);
                }
            }
            RouteNetlinkMessage::NewAddress(addr) => {
                if let Some(entry) = self.entry(addr) {
                    let key = (entry.ifindex, entry.address);
                    if self.addresses.insert(key, entry).is_none() {
                        let on = self.holders.entry(key.1).or_default();
                        // Kept sorted: holders come out in index order, as
                        // they did from the table itself.
                        let at = on.partition_point(|&i| i < key.0);
                        on.insert(at, key.0);
                    }
                }
            }
            RouteNetlinkMessage::DelAddress(addr) => {
                if let Some(entry) = self.entry(addr)
                    && self
                        .addresses
                        .remove(&(entry.ifindex, entry.address))
                        .is_some()
                {
                    self.unhold(entry.ifindex, entry.address);
                }
            }
            _ => {}
        }
    }

    fn unhold(&mut self, ifindex: u32, address: IpAddr) {
        if let Some(on) = self.holders.get_mut(&address) {
            on.retain(|&i| i != ifindex);
            if on.is_empty() {
                self.holders.remove(&address);
            }
        }
    }

    fn new_link(&mut self, link: &LinkMessage) {
        let Some(name) = link.attributes.iter().find_map(|a| match a {
            LinkAttribute::IfName(name) => Some(name.clone()),
            _ => None,
        }) else {
            return;
        };
        let index = link.header.index;
        for entry in self.addresses.values_mut().filter(|e| e.ifindex == index) {
            entry.interface.clone_from(&name);
        }
        self.links.insert(index, name);
    }

    fn entry(&self, msg: &AddressMessage) -> Option<HostAddress> {
        let mut local = None;
        let mut address = None;
        let mut label = None;
        let mut flags = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(a) => local = Some(*a),
                AddressAttribute::Address(a) => address = Some(*a),
                AddressAttribute::Label(l) => label = Some(l.clone()),
                AddressAttribute::Flags(f) => flags = Some(*f),
                _ => {}
            }
        }
        // IFA_LOCAL is the host's own address; IFA_ADDRESS is the peer on a
        // point-to-point link, and the same as IFA_LOCAL elsewhere.
        let address = local.or(address)?;
        let index = msg.header.index;
        let flags =
            flags.unwrap_or_else(|| AddressFlags::from_bits_retain(msg.header.flags.bits().into()));
        Some(HostAddress {
            address,
            prefix_len: msg.header.prefix_len,
            ifindex: index,
            interface: self.link_name(index),
            label,
            flags: flag_names(flags, msg.header.family == AddressFamily::Inet6),
            scope: msg.header.scope.into(),
        })
    }

    pub fn addresses(&self) -> impl Iterator<Item = &HostAddress> {
        self.addresses.values()
    }

    /// The entries holding `address` (usually one), by interface index.
    pub fn holders(&self, address: IpAddr) -> impl Iterator<Item = &HostAddress> {
        self.holders
            .get(&address)
            .into_iter()
            .flatten()
            .filter_map(move |&i| self.addresses.get(&(i, address)))
    }

    /// Whether interface `ifindex` holds `address`.
    pub fn has(&self, ifindex: u32, address: IpAddr) -> bool {
        self.addresses.contains_key(&(ifindex, address))
    }

    pub fn holds(&self, address: IpAddr) -> bool {
        self.holders.contains_key(&address)
    }

    /// The name of `index` as rtnetlink last reported it, for counts seen
    /// on it, also after the link was deleted; `if<index>` for a link
    /// deleted before the table began. No system call: scrapes ask this
    /// for every row.
    pub fn link_name(&self, index: u32) -> String {
        self.links
            .get(&index)
            .or_else(|| self.departed.get(&index))
            .cloned()
            .unwrap_or_else(|| interfaces::unnamed(index))
    }
}

/// The flags `ip addr` shows, by their names there. Bit 0x01 means
/// `secondary` for IPv4 and `temporary` (a privacy address) for IPv6.
fn flag_names(flags: AddressFlags, ipv6: bool) -> Vec<&'static str> {
    let named = [
        (
            AddressFlags::Secondary,
            if ipv6 { "temporary" } else { "secondary" },
        ),
        (AddressFlags::Nodad, "nodad"),
        (AddressFlags::Optimistic, "optimistic"),
        (AddressFlags::Dadfailed, "dadfailed"),
        (AddressFlags::Homeaddress, "home"),
        (AddressFlags::Deprecated, "deprecated"),
        (AddressFlags::Tentative, "tentative"),
        (AddressFlags::Permanent, "permanent"),
        (AddressFlags::Managetempaddr, "mngtmpaddr"),
        (AddressFlags::Noprefixroute, "noprefixroute"),
        (AddressFlags::Mcautojoin, "autojoin"),
        (AddressFlags::StablePrivacy, "stable-privacy"),
    ];
    named
        .into_iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| n)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use netlink_packet_route::address::AddressHeaderFlags;

    use super::*;

    pub fn link(index: u32, name: &str) -> RouteNetlinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::NewLink(msg)
    }

    pub fn addr(
        index: u32,
        ip: &str,
        prefix_len: u8,
        label: Option<&str>,
        flags: AddressFlags,
        scope: AddressScope,
    ) -> AddressMessage {
        let ip: IpAddr = ip.parse().unwrap();
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix_len;
        msg.header.scope = scope;
        msg.header.family = if ip.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.flags = AddressHeaderFlags::from_bits_retain(flags.bits() as u8);
        msg.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv4() {
            msg.attributes.push(AddressAttribute::Local(ip));
        }
        if let Some(l) = label {
            msg.attributes.push(AddressAttribute::Label(l.into()));
        }
        msg.attributes.push(AddressAttribute::Flags(flags));
        msg
    }

    #[test]
    fn addresses_come_and_go() {
        let mut t = HostTable::default();
        t.apply(&link(2, "eth0"));
        let secondary = addr(
            2,
            "192.168.1.100",
            24,
            Some("eth0:1"),
            AddressFlags::Secondary | AddressFlags::Permanent,
            AddressScope::Universe,
        );
        t.apply(&RouteNetlinkMessage::NewAddress(secondary.clone()));
        let v6 = addr(
            2,
            "2001:db8::5",
            64,
            None,
            AddressFlags::Secondary | AddressFlags::Deprecated,
            AddressScope::Universe,
        );
        t.apply(&RouteNetlinkMessage::NewAddress(v6));
        let entries: Vec<_> = t.addresses().cloned().collect();
        assert_eq!(
            entries,
            [
                HostAddress {
                    address: "192.168.1.100".parse().unwrap(),
                    prefix_len: 24,
                    ifindex: 2,
                    interface: "eth0".into(),
                    label: Some("eth0:1".into()),
                    flags: vec!["secondary", "permanent"],
                    scope: Scope::Global,
                },
                HostAddress {
                    address: "2001:db8::5".parse().unwrap(),
                    prefix_len: 64,
                    ifindex: 2,
                    interface: "eth0".into(),
                    label: None,
                    flags: vec!["temporary", "deprecated"],
                    scope: Scope::Global,
                },
            ]
        );
        t.apply(&RouteNetlinkMessage::DelAddress(secondary));
        assert!(!t.holds("192.168.1.100".parse().unwrap()));
        assert!(t.holds("2001:db8::5".parse().unwrap()));
    }

    #[test]
    fn renames_and_deletes_follow_the_link() {
        let mut t = HostTable::default();
        t.apply(&link(3, "old"));
        t.apply(&RouteNetlinkMessage::NewAddress(addr(
            3,
            "10.0.0.1",
            8,
            None,
            AddressFlags::Permanent,
            AddressScope::Universe,
        )));
        t.apply(&link(3, "new"));
        assert_eq!(t.addresses().next().unwrap().interface, "new");
        let RouteNetlinkMessage::NewLink(msg) = link(3, "new") else {
            unreachable!()
        };
        t.apply(&RouteNetlinkMessage::DelLink(msg));
        assert_eq!(t.addresses().count(), 0);
        assert_eq!(t.link_name(3), "new");
        assert_eq!(t.link_name(4), "if4");
    }

    #[test]
    fn loopback_and_link_local_are_not_alias_scope() {
        assert!(Scope::Global.is_alias_scope());
        assert!(Scope::Site.is_alias_scope());
        assert!(!Scope::Link.is_alias_scope());
        assert!(!Scope::Host.is_alias_scope());
    }
}
