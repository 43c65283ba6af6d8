//! Several server namespaces on one Ethernet segment with a client: a
//! bridge in the client namespace with one veth port per server, the
//! layout of two keepalived peers sharing a VIP behind a switch.

use anyhow::Result;

use crate::{
    Host, Mac, Netns,
    link::{Ipv6, SERVER_IF, add_pair, mac_str},
};

const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 1, 0x01];
const BRIDGE: &str = "lab-br";

/// The client's end is the bridge itself (it holds the client's addresses);
/// every server has one interface, `lab-srv`, plugged into a bridge port.
#[derive(Debug)]
pub struct Lan {
    pub client: Host,
    pub servers: Vec<Host>,
}

impl Lan {
    /// A client and `roles.len()` servers, all links up.
    pub fn new(roles: &[&str], ipv6: Ipv6) -> Result<Self> {
        let client_ns = Netns::new("cli")?;
        let servers = roles
            .iter()
            .map(|role| Netns::new(role))
            .collect::<Result<Vec<_>>>()?;
        if ipv6 == Ipv6::Off {
            for ns in std::iter::once(&client_ns).chain(&servers) {
                ns.disable_ipv6()?;
            }
        }
        // A fixed bridge address: a bridge otherwise takes its lowest port's
        // and changes it as ports come and go. STP is off by default, so
        // ports forward at once and the bridge sends no BPDUs. Without
        // multicast snooping the bridge does not join the all-snoopers group
        // (224.0.0.106), whose IGMP reports would otherwise reach every
        // server up to a second after the bridge comes up.
        client_ns.ip(&[
            "link",
            "add",
            BRIDGE,
            "address",
            &mac_str(CLIENT_MAC),
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        let mut hosts = Vec::with_capacity(servers.len());
        for (i, ns) in servers.into_iter().enumerate() {
            let mac: Mac = [0x02, 0, 0, 0, 2, i as u8 + 1];
            let port = format!("lab-p{i}");
            add_pair(&client_ns, &port, None, &ns, SERVER_IF, mac)?;
            client_ns.ip(&["link", "set", &port, "master", BRIDGE, "up"])?;
            ns.ip(&["link", "set", SERVER_IF, "up"])?;
            hosts.push(Host {
                ns,
                ifname: SERVER_IF.to_owned(),
                mac,
            });
        }
        client_ns.ip(&["link", "set", BRIDGE, "up"])?;
        Ok(Self {
            client: Host {
                ns: client_ns,
                ifname: BRIDGE.to_owned(),
                mac: CLIENT_MAC,
            },
            servers: hosts,
        })
    }
}
