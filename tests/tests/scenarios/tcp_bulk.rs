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

pub fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let sender: IpAddr = "10.73.0.1".parse()?;
    let receiver: IpAddr = "10.73.0.2".parse()?;
    veth.client.add_addr(sender, 24)?;
    veth.server.add_addr(receiver, 24)?;
    veth.know_each_other(&[sender], &[receiver])?;
    traffic::fix_headers(&veth)?;

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
    let expected =
        AddressTable::from([(receiver, traffic::wire_count(segments, bulk.payload_sent))]);
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
