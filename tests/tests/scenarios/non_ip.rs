//! ARP, LLDP-ethertype and malformed IPv4 frames land in `non_ip`, counted
//! in frame bytes.

use std::net::Ipv4Addr;

use anyhow::{Result, ensure};
use lab::{
    Count, Dir, Mac, OtherKind, Snapshot, Veth,
    daemon::BothEnds,
    frames::{self, ETH_P_ARP, ETH_P_IP, ETH_P_LLDP},
    link::Ipv6,
    traffic::PacketSocket,
};

use crate::{Outcome, check_eq};

const ARP_REQUESTS: usize = 5;
/// Whole-frame lengths, from a runt below Ethernet's 60-byte minimum (a
/// veth does not pad) up to a full 1500-byte MTU plus header.
const LLDP_LENGTHS: [usize; 5] = [20, 60, 64, 333, 1514];

/// IPv4-ethertype frames that are not IPv4 packets the stack would take:
/// the IP layer drops them, and they must not be credited to an address.
fn malformed_ipv4(src: Mac) -> Vec<Vec<u8>> {
    let header = |version_ihl: u8, total_len: u16| {
        let mut h = vec![0u8; 20];
        h[0] = version_ihl;
        h[2..4].copy_from_slice(&total_len.to_be_bytes());
        h[9] = 17;
        h[12..16].copy_from_slice(&[10, 74, 0, 1]);
        h[16..20].copy_from_slice(&[10, 74, 0, 2]);
        h
    };
    [
        // Cut off inside the header.
        header(0x45, 20)[..12].to_vec(),
        // A header length of 16 bytes, under the minimum of 20.
        header(0x44, 28),
        // A total length shorter than the header itself.
        header(0x45, 10),
        // Version 5 behind the IPv4 ethertype.
        header(0x55, 20),
    ]
    .into_iter()
    .map(|packet| frames::ethernet(frames::BROADCAST, src, ETH_P_IP, &packet))
    .collect()
}

pub fn run() -> Result<Outcome> {
    // No IP at all on the link: no addresses and IPv6 off, so the frames
    // below are the only traffic, and any address entry is a misfiling.
    let veth = Veth::new(Ipv6::Off)?;
    let daemons = BothEnds::start(&veth)?;

    let out = PacketSocket::sender(&veth.client)?;
    let arp_in = PacketSocket::receiver(&veth.server, ETH_P_ARP)?;
    let lldp_in = PacketSocket::receiver(&veth.server, ETH_P_LLDP)?;
    let ip_in = PacketSocket::receiver(&veth.server, ETH_P_IP)?;
    let mut sent = Count::default();
    // Asking for an address nobody holds: the server has no IPv4 address,
    // so it never answers and the counts stay one-way.
    let arp = frames::arp_request(
        veth.client.mac,
        Ipv4Addr::new(10, 74, 0, 1),
        Ipv4Addr::new(10, 74, 0, 99),
    );
    for _ in 0..ARP_REQUESTS {
        out.send(&arp)?;
        sent += Count::one(arp.len() as u64);
    }
    for len in LLDP_LENGTHS {
        out.send(&frames::lldp(veth.client.mac, len))?;
        sent += Count::one(len as u64);
    }
    let malformed = malformed_ipv4(veth.client.mac);
    for frame in &malformed {
        out.send(frame)?;
        sent += Count::one(frame.len() as u64);
    }
    // Each receiver sees its frames after the ingress hook has counted them.
    for _ in 0..ARP_REQUESTS {
        ensure!(
            arp_in.recv()?.len() == arp.len(),
            "an ARP frame changed length"
        );
    }
    for len in LLDP_LENGTHS {
        let got = lldp_in.recv()?.len();
        ensure!(
            got == len,
            "sent a {len}-byte LLDP frame, received {got} bytes"
        );
    }
    for frame in &malformed {
        let got = ip_in.recv()?;
        ensure!(&got == frame, "sent {frame:02x?}, received {got:02x?}");
    }

    let (client, server) = daemons.dump(&veth)?;
    println!(
        "  sent {ARP_REQUESTS} ARP + {} LLDP + {} malformed IPv4 frames: {sent}",
        LLDP_LENGTHS.len(),
        malformed.len()
    );
    let (cif, sif) = (veth.client.ifname.as_str(), veth.server.ifname.as_str());
    check_eq(
        "server rx non_ip",
        &sent,
        &server.other(sif, Dir::Rx, OtherKind::NonIp),
    )?;
    check_eq(
        "client tx non_ip",
        &sent,
        &client.other(cif, Dir::Tx, OtherKind::NonIp),
    )?;
    check_eq(
        "server tx non_ip",
        &Count::default(),
        &server.other(sif, Dir::Tx, OtherKind::NonIp),
    )?;
    check_eq(
        "client rx non_ip",
        &Count::default(),
        &client.other(cif, Dir::Rx, OtherKind::NonIp),
    )?;
    for (name, snap) in [("server", &server), ("client", &client)] {
        no_ip(name, snap)?;
    }
    daemons.stop()?;
    Ok(Outcome::Passed)
}

fn no_ip(name: &str, snap: &Snapshot) -> Result<()> {
    ensure!(
        snap.addresses.is_empty(),
        "{name} counted addresses: {:?}",
        snap.addresses
    );
    ensure!(
        snap.other
            .iter()
            .all(|r| r.kind != OtherKind::Overflow || r.count() == Count::default()),
        "{name} counted overflow: {:?}",
        snap.other
    );
    Ok(())
}
