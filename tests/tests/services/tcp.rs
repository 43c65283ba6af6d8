//! A TCP transfer of 24 MiB with veth's TSO/GSO on, to a listener in
//! `web.service`: the unit's rx packets equal the segments the client sent
//! (OutSegs + RetransSegs) and its tx packets the segments the server's
//! stack sent, with the per-segment byte arithmetic of the foundation test.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Result, ensure};
use lab::{cgroups::Peer, ip, procnet::Snmp, traffic, units::UnitLab};

use super::fixture::{PEER, counts, services};
use crate::{Outcome, check_eq};

const TOTAL: u64 = 24 << 20;

pub fn run() -> Result<Outcome> {
    let mut lab = UnitLab::new("10.85.0", &[10])?;
    traffic::fix_headers(&lab.veth)?;
    let web = lab.unit("web.service")?;
    let daemon = lab.daemon()?;
    let server = &lab.veth.server.ns;
    let (mut sink, _) = Peer::start(PEER, server, &web, &["tcp-sink", "10.85.0.10:5201"])?;
    let before = Snmp::read(server)?;
    let to: SocketAddr = "10.85.0.10:5201".parse()?;
    let sent = traffic::send_bulk(&lab.veth.client.ns, to, TOTAL, Duration::ZERO)?;
    let received: u64 = sink.line()?.parse()?;
    traffic::wait_for_last_ack(server)?;
    let after = Snmp::read(server)?;
    ensure!(
        received == TOTAL,
        "web.service read {received} of {TOTAL} bytes"
    );
    println!("  client: {sent:?}");

    let client_segments = sent.out_segs + sent.retrans_segs;
    let server_segments =
        after.delta(&before, "Tcp", "OutSegs")? + after.delta(&before, "Tcp", "RetransSegs")?;
    ensure!(
        client_segments > 1000,
        "only {client_segments} segments: TSO aggregates expected"
    );
    let rx = traffic::wire_count(client_segments, sent.payload_sent);
    // The server sends no payload: ACKs, the SYN-ACK and a FIN.
    let tx = traffic::wire_count(server_segments, 0);
    let doc = services(&lab.veth)?;
    check_eq(
        "web.service rx and tx against the segment counters",
        &Some([rx.packets, rx.bytes, tx.packets, tx.bytes]),
        &counts(&doc, ip("10.85.0.10"), "web.service"),
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}
