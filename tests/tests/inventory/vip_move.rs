//! A keepalived-style VIP moves from host A to host B: each host keeps
//! what it counted while it held the VIP, and `check` tells which host
//! misses it.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use anyhow::{Result, ensure};
use lab::{
    Count,
    aliases::{self, Aliases, State},
    harness::{Case, Outcome},
    ip,
    lan::Lan,
    link::Ipv6,
    served::{Listen, Served},
    traffic,
};

use crate::{CLIENT_PORT, SERVER_PORT, change_and_expect_log};

/// Where a VIP is in the move test, and what each host has counted for it.
struct Peer<'a> {
    name: &'a str,
    host: &'a lab::Host,
    served: &'a Served,
}

impl Peer<'_> {
    fn aliases(&self) -> Result<Aliases> {
        aliases::aliases(&self.host.ns, &self.served.pins, &self.served.config)
    }
}

/// Request payloads before and after the move, and the reply payload of
/// each phase: different, so counts credited to the wrong phase show.
const BEFORE_MOVE: (&[usize], usize) = (&[100, 200, 300], 50);
const AFTER_MOVE: (&[usize], usize) = (&[10, 20, 30, 40], 500);

/// Request/reply exchanges from the client to `vip` held by `server`.
fn exchanges(
    client: &UdpSocket,
    server: &lab::Host,
    vip: IpAddr,
    (requests, reply): (&[usize], usize),
) -> Result<(Count, Count)> {
    let socket = traffic::udp_socket(&server.ns, SocketAddr::new(vip, SERVER_PORT))?;
    let (mut rx, mut tx) = (Count::default(), Count::default());
    for &request in requests {
        traffic::exchange(client, &socket, request, reply)?;
        rx += Count::datagram(vip, request);
        tx += Count::datagram(vip, reply);
    }
    Ok((rx, tx))
}

/// Fails unless the only counted address in `a` is `vip`, with `rx`/`tx`.
fn only_vip_counted(peer: &Peer<'_>, a: &Aliases, vip: IpAddr, rx: Count, tx: Count) -> Result<()> {
    for row in &a.aliases {
        let (want_rx, want_tx) = if row.address == vip {
            (rx, tx)
        } else {
            (Count::default(), Count::default())
        };
        ensure!(
            row.rx() == want_rx && row.tx() == want_tx,
            "{}: {}: expected rx {want_rx}, tx {want_tx}; got rx {}, tx {}",
            peer.name,
            row.address,
            row.rx(),
            row.tx()
        );
    }
    Ok(())
}

pub const CASE: Case = ("vip_moves_between_two_hosts", run);

fn run() -> Result<Outcome> {
    // IPv6 off: with ARP as the only other traffic (not IP, so in non_ip),
    // every address count is exactly the UDP this test sends.
    let lan = Lan::new(&["a", "b"], Ipv6::Off)?;
    let (client, a, b) = (&lan.client, &lan.servers[0], &lan.servers[1]);
    let (client_ip, a_ip, b_ip, vip) = (
        ip("10.72.0.1"),
        ip("10.72.0.2"),
        ip("10.72.0.3"),
        ip("10.72.0.100"),
    );
    client.add_addr(client_ip, 24)?;
    a.add_addr(a_ip, 24)?;
    b.add_addr(b_ip, 24)?;
    a.add_addr(vip, 24)?;
    // The peers know the client for good; the client resolves the VIP with
    // ARP, so a neighbour flush is what moves its traffic, as with
    // keepalived.
    for peer in [a, b] {
        peer.add_neighbour(client_ip, client.mac)?;
    }

    let vip_entry = "[[alias]]\nname = \"vip\"\naddress = \"10.72.0.100\"\nowner = \"lb-team\"\npurpose = \"keepalived VIP\"\n";
    let a_served = Served::new(
        "a",
        a,
        &format!(
            "[[alias]]\nname = \"node-a\"\naddress = \"10.72.0.2\"\ninterface = \"lab-srv\"\n\n{vip_entry}"
        ),
        Listen::Default,
    )?;
    let b_served = Served::new(
        "b",
        b,
        &format!(
            "[[alias]]\nname = \"node-b\"\naddress = \"10.72.0.3\"\ninterface = \"lab-srv\"\n\n{vip_entry}"
        ),
        Listen::Default,
    )?;
    let (a_config, b_config) = (&a_served.config, &b_served.config);
    let a_daemon = a_served.start(a)?;
    let b_daemon = b_served.start(b)?;
    let peer_a = Peer {
        name: "A",
        host: a,
        served: &a_served,
    };
    let peer_b = Peer {
        name: "B",
        host: b,
        served: &b_served,
    };

    let socket = traffic::udp_socket(&client.ns, SocketAddr::new(client_ip, CLIENT_PORT))?;
    let (rx_a, tx_a) = exchanges(&socket, a, vip, BEFORE_MOVE)?;
    let (seen_a, seen_b) = (peer_a.aliases()?, peer_b.aliases()?);
    ensure!(seen_a.row(vip)?.state == State::Documented, "{seen_a:#?}");
    ensure!(seen_b.row(vip)?.state == State::Absent, "{seen_b:#?}");
    only_vip_counted(&peer_a, &seen_a, vip, rx_a, tx_a)?;
    only_vip_counted(&peer_b, &seen_b, vip, Count::default(), Count::default())?;

    // The failover: A lets go, B takes over, the client forgets A's MAC.
    change_and_expect_log(
        &a_daemon,
        &a.ns,
        &["addr", "del", "10.72.0.100/24", "dev", &a.ifname],
        "address 10.72.0.100/24 removed from lab-srv: alias \"vip\" is absent",
    )?;
    change_and_expect_log(
        &b_daemon,
        &b.ns,
        &["addr", "add", "10.72.0.100/24", "dev", &b.ifname],
        "address 10.72.0.100/24 added on lab-srv: alias \"vip\" is documented",
    )?;
    client
        .ns
        .ip(&["neigh", "flush", "to", "10.72.0.100", "dev", &client.ifname])?;

    let (rx_b, tx_b) = exchanges(&socket, b, vip, AFTER_MOVE)?;
    let (seen_a, seen_b) = (peer_a.aliases()?, peer_b.aliases()?);
    println!("  A counted for the VIP: rx {rx_a}, tx {tx_a} (before the move)");
    println!("  B counted for the VIP: rx {rx_b}, tx {tx_b} (after the move)");
    let (vip_a, vip_b) = (seen_a.row(vip)?, seen_b.row(vip)?);
    ensure!(
        vip_a.state == State::Absent
            && vip_a.interface.is_none()
            && vip_a.alias.as_deref() == Some("vip"),
        "A after the move: {vip_a:#?}"
    );
    ensure!(
        vip_b.state == State::Documented
            && vip_b.interface.as_deref() == Some("lab-srv")
            && vip_b.alias.as_deref() == Some("vip")
            && vip_b.owner.as_deref() == Some("lb-team"),
        "B after the move: {vip_b:#?}"
    );
    // A keeps what it counted while it held the VIP; B counts from the move.
    only_vip_counted(&peer_a, &seen_a, vip, rx_a, tx_a)?;
    only_vip_counted(&peer_b, &seen_b, vip, rx_b, tx_b)?;

    // `check` agrees: B's file and host agree, A misses its VIP.
    let checked_a = aliases::check(Some(&a.ns), a_config)?;
    let checked_b = aliases::check(Some(&b.ns), b_config)?;
    ensure!(
        checked_a.code == 1
            && checked_a.stdout
                == "missing: alias \"vip\" (10.72.0.100) is not configured on this host\n",
        "check on A: {checked_a:?}"
    );
    ensure!(
        checked_b.code == 0 && checked_b.stdout == "the alias file and this host agree\n",
        "check on B: {checked_b:?}"
    );
    a_daemon.stop()?;
    b_daemon.stop()?;
    Ok(Outcome::Passed)
}
