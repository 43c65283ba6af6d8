//! UDP to a server holding several addresses on one interface, counted by a
//! daemon at each end of the veth.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use anyhow::{Result, ensure};
use lab::{
    Count, Dir, OtherKind, Snapshot, Veth, daemon::BothEnds, link::Ipv6, snapshot::AddressTable,
    traffic,
};

use crate::{Outcome, check_eq, print_table};

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5300;

/// Per server address, in the order of [`Aliases::servers`]: the request
/// payloads the client sends it, and the reply payload it answers each
/// with. Counts and sizes differ between addresses and between directions,
/// so counts credited to the wrong address or direction cannot add up.
/// The largest datagram still fits a 1500-byte MTU over IPv6.
pub const PLAN: [(&[usize], usize); 3] = [
    (&[0, 64, 1000, 1400], 10),
    (&[200, 200, 200], 300),
    (&[1, 2, 3, 4, 5], 1200),
];

/// The addresses of a scenario: one on the client, three on the server.
pub struct Aliases {
    pub client: IpAddr,
    pub servers: [IpAddr; 3],
}

/// What each end should have counted.
#[derive(Debug, Default)]
pub struct Expected {
    pub server_rx: AddressTable,
    pub server_tx: AddressTable,
    pub client_rx: AddressTable,
    pub client_tx: AddressTable,
}

/// IPv4: a primary address, a secondary one, and a secondary one with the
/// label `lab-srv:1`, all in one /24.
pub fn ipv4_aliases(veth: &Veth) -> Result<Aliases> {
    let aliases = Aliases {
        client: "10.71.0.1".parse()?,
        servers: [
            "10.71.0.2".parse()?,
            "10.71.0.3".parse()?,
            "10.71.0.4".parse()?,
        ],
    };
    veth.client.add_addr(aliases.client, 24)?;
    veth.server.add_addr(aliases.servers[0], 24)?;
    veth.server.add_addr(aliases.servers[1], 24)?;
    veth.server.add_labelled_addr(aliases.servers[2], 24, "1")?;
    // The point of the scenario is that secondaries and labelled aliases
    // are counted like the primary; make sure they really are that.
    let shown = veth
        .server
        .ns
        .ip(&["-4", "-o", "addr", "show", "dev", &veth.server.ifname])?;
    for needle in [
        "10.71.0.3/24 scope global secondary lab-srv",
        "10.71.0.4/24 scope global secondary lab-srv:1",
    ] {
        ensure!(shown.contains(needle), "no `{needle}` in:\n{shown}");
    }
    veth.know_each_other(&[aliases.client], &aliases.servers)?;
    Ok(aliases)
}

const V6_PREFIX: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x71, 0, 0, 0, 0, 0, 0);

pub fn ipv6_aliases(veth: &Veth) -> Result<Aliases> {
    let host = |n| IpAddr::V6(Ipv6Addr::from(u128::from(V6_PREFIX) | n));
    let aliases = Aliases {
        client: host(1),
        servers: [host(2), host(3), host(4)],
    };
    veth.client.add_addr(aliases.client, 64)?;
    for addr in aliases.servers {
        veth.server.add_addr(addr, 64)?;
    }
    veth.know_each_other(&[aliases.client], &aliases.servers)?;
    Ok(aliases)
}

/// The scenario's own addresses: the link's IPv6 housekeeping (link-local
/// and multicast) also shows up in the counts, and is not what is tested.
fn in_v6_prefix(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V6(a) => u128::from(*a) >> 64 == u128::from(V6_PREFIX) >> 64,
        IpAddr::V4(_) => false,
    }
}

/// Sends [`PLAN`]: each request answered before the next goes out.
pub fn send_plan(veth: &Veth, aliases: &Aliases) -> Result<Expected> {
    let client = traffic::udp_socket(
        &veth.client.ns,
        SocketAddr::new(aliases.client, CLIENT_PORT),
    )?;
    let mut expected = Expected::default();
    for (&server_addr, &(requests, reply)) in aliases.servers.iter().zip(&PLAN) {
        let server =
            traffic::udp_socket(&veth.server.ns, SocketAddr::new(server_addr, SERVER_PORT))?;
        for &request in requests {
            traffic::exchange(&client, &server, request, reply)?;
            *expected.server_rx.entry(server_addr).or_default() +=
                Count::datagram(server_addr, request);
            *expected.server_tx.entry(server_addr).or_default() +=
                Count::datagram(server_addr, reply);
            *expected.client_tx.entry(aliases.client).or_default() +=
                Count::datagram(server_addr, request);
            *expected.client_rx.entry(aliases.client).or_default() +=
                Count::datagram(server_addr, reply);
        }
    }
    Ok(expected)
}

pub fn ipv4() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let aliases = ipv4_aliases(&veth)?;
    // With IPv6 off and static neighbours, the link carries nothing but the
    // plan: every address entry must be accounted for.
    both_ends(&veth, &aliases, |_| true)
}

pub fn ipv6() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::On)?;
    let aliases = ipv6_aliases(&veth)?;
    both_ends(&veth, &aliases, in_v6_prefix)
}

fn both_ends(veth: &Veth, aliases: &Aliases, keep: fn(&IpAddr) -> bool) -> Result<Outcome> {
    let daemons = BothEnds::start(veth)?;

    let expected = send_plan(veth, aliases)?;
    let (client, server) = daemons.dump(veth)?;

    let (cif, sif) = (veth.client.ifname.as_str(), veth.server.ifname.as_str());
    print_table("server rx", &expected.server_rx);
    print_table("server tx", &expected.server_tx);
    print_table("client rx", &expected.client_rx);
    print_table("client tx", &expected.client_tx);
    check_eq(
        "server rx",
        &expected.server_rx,
        &server.addresses(sif, Dir::Rx, keep),
    )?;
    check_eq(
        "server tx",
        &expected.server_tx,
        &server.addresses(sif, Dir::Tx, keep),
    )?;
    check_eq(
        "client rx",
        &expected.client_rx,
        &client.addresses(cif, Dir::Rx, keep),
    )?;
    check_eq(
        "client tx",
        &expected.client_tx,
        &client.addresses(cif, Dir::Tx, keep),
    )?;
    no_other(&server, sif)?;
    no_other(&client, cif)?;

    daemons.stop()?;
    Ok(Outcome::Passed)
}

/// Static neighbours mean no ARP or ND, and the map is far from full.
fn no_other(snap: &Snapshot, iface: &str) -> Result<()> {
    for dir in [Dir::Rx, Dir::Tx] {
        for kind in [OtherKind::NonIp, OtherKind::Overflow] {
            check_eq(
                &format!("{iface} {dir:?} {kind:?}"),
                &Count::default(),
                &snap.other(iface, dir, kind),
            )?;
        }
    }
    Ok(())
}
