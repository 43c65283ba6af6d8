//! What `top` and the live page are tested against: a daemon on the
//! server end of a veth, serving on the server namespace's loopback (which
//! it does not count on), and UDP from one client address to three server
//! addresses at known, different rates.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use anyhow::Result;

use crate::{
    Daemon, Veth,
    background::{Pace, Traffic},
    daemon::Launch,
    link::Ipv6,
    served::{Listen, Served},
    traffic,
};

/// The flows to set up.
pub struct Flows<'a> {
    /// Names the scratch and pin directories.
    pub role: &'a str,
    pub aliases: &'a str,
    pub client: IpAddr,
    /// Each server address with the datagrams a second sent to it.
    pub servers: [(IpAddr, u32); 3],
    pub port: u16,
    /// UDP payload bytes of every datagram.
    pub payload: usize,
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
    pub fn start(flows: &Flows<'_>, launch: &Launch) -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        let (srv, cli) = (&veth.server, &veth.client);
        let servers = flows.servers.map(|(a, _)| a);
        cli.add_addr(flows.client, 24)?;
        for addr in servers {
            srv.add_addr(addr, 24)?;
        }
        veth.know_each_other(&[flows.client], &servers)?;
        let served = Served::new(flows.role, srv, flows.aliases, Listen::Loopback)?;
        let daemon = Daemon::start_with(&served.daemon_config(srv), launch)?;
        // Bound, never read: a full buffer drops in silence, where a closed
        // port would answer with ICMP and add transmit traffic.
        let _sinks = servers
            .iter()
            .map(|&a| traffic::udp_socket(&srv.ns, SocketAddr::new(a, flows.port)))
            .collect::<Result<Vec<_>>>()?;
        let socket = traffic::udp_socket(&cli.ns, SocketAddr::new(flows.client, 0))?;
        let mut senders = Traffic::default();
        for (to, pps) in flows.servers {
            let pace = Pace::per_second(SocketAddr::new(to, flows.port), flows.payload, pps);
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
