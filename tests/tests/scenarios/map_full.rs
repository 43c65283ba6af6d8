//! A full address map: whatever finds no slot is counted in `overflow`, so
//! nothing sent goes uncounted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Dir, OtherKind, Veth, daemon::Config, dump, link::Ipv6,
    snapshot::AddressTable, traffic,
};

use crate::{Outcome, check_eq, print_table};

const CAPACITY: u32 = 4;
const ADDRESSES: u8 = 10;

pub fn run() -> Result<Outcome> {
    // IPv6 off: its link-local housekeeping would take map slots.
    let veth = Veth::new(Ipv6::Off)?;
    let client: IpAddr = "10.76.0.1".parse()?;
    let servers: Vec<IpAddr> = (0..ADDRESSES)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 76, 0, 10 + i)))
        .collect();
    veth.client.add_addr(client, 24)?;
    for &addr in &servers {
        veth.server.add_addr(addr, 24)?;
    }
    veth.know_each_other(&[client], &servers)?;

    let pins = BpfDir::new("srv")?;
    let daemon = Daemon::start(&Config {
        map_capacity: Some(CAPACITY),
        ..Config::new(&veth.server.ns, &pins, &veth.server.ifname)
    })?;

    // One way only, to a socket on every address: no replies and no ICMP
    // port unreachables, so the server's egress takes no slot either.
    let from = traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, 40000))?;
    let sinks = servers
        .iter()
        .map(|&addr| traffic::udp_socket(&veth.server.ns, SocketAddr::new(addr, 5300)))
        .collect::<Result<Vec<_>>>()?;
    let mut sent = AddressTable::new();
    // Address i gets i + 1 datagrams of 100 + 10·i bytes.
    for (i, (&addr, sink)) in servers.iter().zip(&sinks).enumerate() {
        for _ in 0..=i {
            let payload = 100 + 10 * i;
            traffic::one_way(&from, sink, payload)?;
            *sent.entry(addr).or_default() += Count::datagram(addr, payload);
        }
    }
    let snap = dump(&veth.server.ns, &pins)?;
    daemon.stop()?;

    let iface = veth.server.ifname.as_str();
    let entries = snap.addresses(iface, Dir::Rx, |_| true);
    let overflow = snap.other(iface, Dir::Rx, OtherKind::Overflow);
    let total: Count = sent.values().copied().sum();
    print_table("sent", &sent);
    print_table("counted", &entries);
    println!("  overflow   {overflow}");

    check_eq("address entries", &(CAPACITY as usize), &entries.len())?;
    check_eq(
        "entries + overflow",
        &total,
        &(entries.values().copied().sum::<Count>() + overflow),
    )?;
    // Stronger than the sum: each address that got a slot has exactly its
    // own traffic, and overflow holds exactly everyone else's.
    for (addr, count) in &entries {
        check_eq(
            &format!("entry for {addr}"),
            &sent.get(addr).copied(),
            &Some(*count),
        )?;
    }
    let left_out: Count = sent
        .iter()
        .filter(|(addr, _)| !entries.contains_key(addr))
        .map(|(_, count)| *count)
        .sum();
    check_eq("overflow", &left_out, &overflow)?;
    ensure!(
        snap.addresses(iface, Dir::Tx, |_| true).is_empty(),
        "the server sent something: {:?}",
        snap.addresses
    );
    Ok(Outcome::Passed)
}
