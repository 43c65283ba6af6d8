//! What `top` and the live page are tested against: a daemon on the
//! server end of a veth, serving on the server namespace's loopback (which
//! it does not count on), and UDP from one client address to three server
//! addresses at known, different rates: one definition, which both suites
//! assert against.

use std::net::{SocketAddr, UdpSocket};

use anyhow::Result;

use crate::{
    Count, Daemon, Veth,
    background::{Pace, Traffic},
    daemon::Launch,
    link::Ipv6,
    served::{Listen, Served},
    traffic,
};

/// The client every flow comes from.
pub const CLIENT: &str = "10.74.0.1";
/// The server's addresses: `web` and `mail` are documented, the stray is
/// not.
pub const WEB: &str = "10.74.0.2";
pub const MAIL: &str = "10.74.0.3";
pub const STRAY: &str = "10.74.0.4";
/// What every lab address starts with, for a filter that matches them all.
pub const NET: &str = "10.74.0.";
pub const PORT: u16 = 5300;
/// UDP payload bytes of every datagram.
pub const PAYLOAD: usize = 1000;
/// Datagrams a second to each address: different enough that the order by
/// rate is unambiguous.
pub const WEB_PPS: u32 = 200;
pub const MAIL_PPS: u32 = 50;
pub const STRAY_PPS: u32 = 10;

/// The alias file: web and mail, with owners; web has a purpose too.
pub const ALIASES: &str = r#"
[[alias]]
name = "web"
address = "10.74.0.2"
owner = "team-web"
purpose = "the shop"
interface = "lab-srv"

[[alias]]
name = "mail"
address = "10.74.0.3"
owner = "team-mail"
interface = "lab-srv"
"#;

/// `pps` datagrams a second in bits a second, counted at the IP layer:
/// header, UDP header, payload.
pub fn bits(pps: u32) -> f64 {
    f64::from(pps) * Count::datagram(crate::ip(WEB), PAYLOAD).bytes as f64 * 8.0
}

/// The running setup. Fields drop in order: the senders stop before the
/// daemon, and the namespaces go last.
pub struct RatedLab {
    pub traffic: Traffic,
    pub daemon: Option<Daemon>,
    pub served: Served,
    _sinks: Vec<UdpSocket>,
    pub veth: Veth,
}

impl RatedLab {
    /// Addresses, the daemon (started with `launch`), then the flows.
    /// `role` names the scratch and pin directories.
    pub fn start(role: &str, launch: &Launch) -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        let (srv, cli) = (&veth.server, &veth.client);
        let flows = [(WEB, WEB_PPS), (MAIL, MAIL_PPS), (STRAY, STRAY_PPS)]
            .map(|(a, pps)| (crate::ip(a), pps));
        let servers = flows.map(|(a, _)| a);
        let client = crate::ip(CLIENT);
        cli.add_addr(client, 24)?;
        for addr in servers {
            srv.add_addr(addr, 24)?;
        }
        veth.know_each_other(&[client], &servers)?;
        let served = Served::new(role, srv, ALIASES, Listen::Loopback)?;
        let daemon = Daemon::start_with(&served.daemon_config(srv), launch)?;
        // Bound, never read: a full buffer drops in silence, where a closed
        // port would answer with ICMP and add transmit traffic.
        let _sinks = servers
            .iter()
            .map(|&a| traffic::udp_socket(&srv.ns, SocketAddr::new(a, PORT)))
            .collect::<Result<Vec<_>>>()?;
        let socket = traffic::udp_socket(&cli.ns, SocketAddr::new(client, 0))?;
        let mut senders = Traffic::default();
        for (to, pps) in flows {
            let pace = Pace::per_second(SocketAddr::new(to, PORT), PAYLOAD, pps);
            senders.flow(socket.try_clone()?, pace, Default::default());
        }
        Ok(Self {
            traffic: senders,
            daemon: Some(daemon),
            served,
            _sinks,
            veth,
        })
    }
}
