//! A bulk TCP transfer with veth's default offloads: the sender's TSO/GSO
//! aggregates reach the receiver's ingress hook whole, and must still be
//! counted as the segments they stand for.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Dir, OtherKind, Veth, daemon::Config, dump, link::Ipv6,
    snapshot::AddressTable, traffic,
};

use crate::{Outcome, check_eq, print_table};

/// Over 50 MB, so that thousands of aggregates cross the hook.
const TOTAL: u64 = 64 << 20;

/// Header bytes of every segment the sender sends once timestamps are
/// negotiated: IPv4 header 20 + TCP header 20 + timestamp option 12 (10,
/// padded with two NOPs). No SACK blocks appear: the receiver sends no data,
/// so the sender never has anything to selectively acknowledge.
const SEGMENT_HEADERS: u64 = 20 + 32;
/// The SYN's extra header bytes over [`SEGMENT_HEADERS`]: MSS (4), SACK
/// permitted with timestamps (2 + 10), and window scale with a NOP (4) make
/// a 40-byte TCP header, 8 more than the 32 of every later segment.
const SYN_EXTRA: u64 = 8;

pub fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let sender: IpAddr = "10.73.0.1".parse()?;
    let receiver: IpAddr = "10.73.0.2".parse()?;
    veth.client.add_addr(sender, 24)?;
    veth.server.add_addr(receiver, 24)?;
    veth.know_each_other(&[sender], &[receiver])?;
    // Header sizes must not depend on the host's defaults; the SYN-ACK
    // must agree to the same options, so both ends are set.
    for ns in [&veth.client.ns, &veth.server.ns] {
        ns.sysctl("net.ipv4.tcp_timestamps", "1")?;
        ns.sysctl("net.ipv4.tcp_sack", "1")?;
        ns.sysctl("net.ipv4.tcp_window_scaling", "1")?;
        ns.sysctl("net.ipv4.tcp_ecn", "0")?;
    }

    let pins = BpfDir::new("srv")?;
    let daemon = Daemon::start(&Config::new(&veth.server.ns, &pins, &veth.server.ifname))?;
    let bulk = traffic::tcp_bulk(
        &veth.client.ns,
        &veth.server.ns,
        SocketAddr::new(receiver, 5201),
        TOTAL,
    )?;
    let snap = dump(&veth.server.ns, &pins)?;
    println!("  sender: {bulk:?}");

    ensure!(
        bulk.received == TOTAL,
        "the receiver read {} of {TOTAL} bytes",
        bulk.received
    );
    // OutSegs leaves retransmissions out; the wire and the hook do not.
    let segments = bulk.out_segs + bulk.retrans_segs;
    check_eq(
        "tcpi_segs_out against OutSegs + RetransSegs",
        &segments,
        &bulk.segs_out,
    )?;
    // Every segment carries its own headers; the payload, retransmitted
    // bytes included, is what the socket put on the wire.
    let expected = AddressTable::from([(
        receiver,
        Count::new(
            segments,
            segments * SEGMENT_HEADERS + SYN_EXTRA + bulk.payload_sent,
        ),
    )]);
    print_table("rx", &expected);
    check_eq(
        "receiver rx",
        &expected,
        &snap.addresses(&veth.server.ifname, Dir::Rx, |_| true),
    )?;
    check_eq(
        "receiver rx overflow",
        &Count::default(),
        &snap.other(&veth.server.ifname, Dir::Rx, OtherKind::Overflow),
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}
