//! Two namespaces joined by a veth pair, with addresses and static
//! neighbours.

use std::net::IpAddr;

use anyhow::Result;

use crate::Netns;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// Locally administered, so they can never be a real vendor's; each lives
/// in its own namespace, so every pair can use the same two.
const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_IF: &str = "lab-cli";
pub(crate) const SERVER_IF: &str = "lab-srv";

/// One end of a [`Veth`]: a namespace and its end of the pair.
#[derive(Debug)]
pub struct Host {
    pub ns: Netns,
    pub ifname: String,
    pub mac: Mac,
}

/// Whether the veth ends speak IPv6 at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6 {
    On,
    /// No link-local address, router solicitations or MLD reports: the ends
    /// carry only the traffic a test sends.
    Off,
}

/// A "client" and a "server" namespace joined by a veth pair, both ends up.
#[derive(Debug)]
pub struct Veth {
    pub client: Host,
    pub server: Host,
}

impl Veth {
    pub fn new(ipv6: Ipv6) -> Result<Self> {
        let client = Netns::new("cli")?;
        let server = Netns::new("srv")?;
        if ipv6 == Ipv6::Off {
            for ns in [&client, &server] {
                ns.disable_ipv6()?;
            }
        }
        add_pair(
            &client,
            CLIENT_IF,
            Some(CLIENT_MAC),
            &server,
            SERVER_IF,
            SERVER_MAC,
        )?;
        let veth = Self {
            client: Host {
                ns: client,
                ifname: CLIENT_IF.to_owned(),
                mac: CLIENT_MAC,
            },
            server: Host {
                ns: server,
                ifname: SERVER_IF.to_owned(),
                mac: SERVER_MAC,
            },
        };
        for host in [&veth.client, &veth.server] {
            host.ns.ip(&["link", "set", &host.ifname, "up"])?;
        }
        Ok(veth)
    }

    /// Makes each end's addresses known to the other as permanent
    /// neighbours, so neither ever sends ARP or neighbour discovery for them
    /// and counts hold only the traffic a test sends.
    pub fn know_each_other(&self, client: &[IpAddr], server: &[IpAddr]) -> Result<()> {
        for &addr in client {
            self.server.add_neighbour(addr, self.client.mac)?;
        }
        for &addr in server {
            self.client.add_neighbour(addr, self.server.mac)?;
        }
        Ok(())
    }
}

impl Host {
    /// Adds `addr/prefix_len`. IPv6 addresses skip duplicate address
    /// detection: they are usable at once, and DAD's probes never appear.
    pub fn add_addr(&self, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let cidr = format!("{addr}/{prefix_len}");
        let mut args = vec!["addr", "add", &cidr, "dev", &self.ifname];
        if addr.is_ipv6() {
            args.push("nodad");
        }
        self.ns.ip(&args)?;
        Ok(())
    }

    /// Adds an IPv4 address with the label `<ifname>:<suffix>`, the way
    /// `ifconfig`-era aliases (`eth0:1`) are configured.
    pub fn add_labelled_addr(&self, addr: IpAddr, prefix_len: u8, suffix: &str) -> Result<()> {
        let cidr = format!("{addr}/{prefix_len}");
        let label = format!("{}:{suffix}", self.ifname);
        self.ns
            .ip(&["addr", "add", &cidr, "dev", &self.ifname, "label", &label])?;
        Ok(())
    }

    pub fn add_neighbour(&self, addr: IpAddr, mac: Mac) -> Result<()> {
        self.ns.ip(&[
            "neigh",
            "replace",
            &addr.to_string(),
            "lladdr",
            &mac_str(mac),
            "dev",
            &self.ifname,
            "nud",
            "permanent",
        ])?;
        Ok(())
    }

    /// The interface's index inside its namespace.
    pub fn ifindex(&self) -> Result<u32> {
        let name = std::ffi::CString::new(self.ifname.as_str())?;
        // SAFETY: a valid C string; the call only reads it.
        let index = self
            .ns
            .enter(|| unsafe { libc::if_nametoindex(name.as_ptr()) })?;
        if index == 0 {
            anyhow::bail!("no interface {} in netns {}", self.ifname, self.ns.name());
        }
        Ok(index)
    }
}

/// A veth pair made in `ns` with its peer placed straight into `peer_ns`,
/// so no name is ever taken in the caller's namespace. Without `mac` the
/// kernel picks the local end's.
pub(crate) fn add_pair(
    ns: &Netns,
    name: &str,
    mac: Option<Mac>,
    peer_ns: &Netns,
    peer: &str,
    peer_mac: Mac,
) -> Result<()> {
    let mac = mac.map(mac_str);
    let peer_mac = mac_str(peer_mac);
    let mut args = vec!["link", "add", name];
    if let Some(mac) = &mac {
        args.extend(["address", mac.as_str()]);
    }
    args.extend([
        "type",
        "veth",
        "peer",
        "name",
        peer,
        "address",
        &peer_mac,
        "netns",
        peer_ns.name(),
    ]);
    ns.ip(&args).map(drop)
}

pub fn mac_str(mac: Mac) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_colon_separated_hex() {
        assert_eq!(mac_str([0x02, 0, 0xab, 0, 0, 0xff]), "02:00:ab:00:00:ff");
    }
}
