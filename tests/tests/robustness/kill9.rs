//! SIGKILL in the middle of a TCP bulk transfer and a UDP stream, then a
//! restart: the pinned links keep the programs counting while no daemon
//! runs, and the new daemon adopts them, so the final counts equal what
//! the sender's own stack says it sent.

use std::{
    net::{IpAddr, SocketAddr},
    thread,
    time::Duration,
};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Dir, OtherKind, Veth,
    daemon::Config,
    dump,
    link::Ipv6,
    procnet::Snmp,
    snapshot::AddressTable,
    stress::UdpStream,
    traffic::{self, TcpBulk},
};

use crate::{Outcome, check_eq};

/// With a 1 ms pause per 64 KiB this lasts a few seconds: long enough to
/// kill the daemon and start it again while it runs.
const TOTAL: u64 = 192 << 20;
const PAUSE: Duration = Duration::from_millis(1);

pub fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let client: IpAddr = "10.90.0.1".parse()?;
    let tcp_dst: IpAddr = "10.90.0.2".parse()?;
    let udp_dst: IpAddr = "10.90.0.3".parse()?;
    veth.client.add_addr(client, 24)?;
    veth.server.add_addr(tcp_dst, 24)?;
    veth.server.add_addr(udp_dst, 24)?;
    veth.know_each_other(&[client], &[tcp_dst, udp_dst])?;
    traffic::fix_headers(&veth)?;

    let pins = BpfDir::new("srv")?;
    let config = Config::new(&veth.server.ns, &pins, &veth.server.ifname);
    let first = Daemon::start(&config)?;
    let client_before = Snmp::read(&veth.client.ns)?;
    let server_before = Snmp::read(&veth.server.ns)?;
    let udp = UdpStream::start(
        &veth.client.ns,
        SocketAddr::new(client, 40000),
        &veth.server.ns,
        SocketAddr::new(udp_dst, 5300),
    )?;

    let (bulk, second) = kill_and_restart(&veth, &config, first, &udp, tcp_dst)?;
    let tally = udp.finish()?;
    let client_after = Snmp::read(&veth.client.ns)?;
    let server_after = Snmp::read(&veth.server.ns)?;
    let snap = dump(&veth.server.ns, &pins)?;
    second.stop()?;

    println!("  tcp sender: {bulk:?}");
    println!("  udp: {tally:?}");
    ensure!(
        bulk.received == TOTAL,
        "the receiver read {} of {TOTAL} bytes",
        bulk.received
    );
    // The oracle: what the sender's stack says it put on the wire.
    let segments = client_after.delta(&client_before, "Tcp", "OutSegs")?
        + client_after.delta(&client_before, "Tcp", "RetransSegs")?;
    let datagrams = client_after.delta(&client_before, "Udp", "OutDatagrams")?;
    check_eq(
        "UDP datagrams sent (OutDatagrams vs the sender's tally)",
        &tally.sent.packets,
        &datagrams,
    )?;
    check_eq(
        "UDP datagrams received",
        &tally.sent.packets,
        &tally.received,
    )?;
    let expected_rx = AddressTable::from([
        (tcp_dst, traffic::wire_count(segments, bulk.payload_sent)),
        (udp_dst, tally.sent),
    ]);
    let iface = veth.server.ifname.as_str();
    let rx = snap.addresses(iface, Dir::Rx, |_| true);
    for (addr, count) in &expected_rx {
        println!(
            "  rx {addr:<12} expected {count}, counted {}",
            rx.get(addr).copied().unwrap_or_default()
        );
    }
    check_eq(
        "server rx (sender's OutSegs + RetransSegs, OutDatagrams)",
        &expected_rx,
        &rx,
    )?;
    // The server's ACKs: its own stack's segment count, with the fixed
    // header of every segment (fix_headers keeps SACK blocks out of them).
    let acks = server_after.delta(&server_before, "Tcp", "OutSegs")?
        + server_after.delta(&server_before, "Tcp", "RetransSegs")?;
    let tx = snap.addresses(iface, Dir::Tx, |_| true);
    println!(
        "  tx {tcp_dst:<12} expected {acks} pkts, counted {:?}",
        tx.get(&tcp_dst)
    );
    check_eq(
        "server tx (its own OutSegs + RetransSegs, no payload)",
        &AddressTable::from([(tcp_dst, traffic::wire_count(acks, 0))]),
        &tx,
    )?;
    for dir in [Dir::Rx, Dir::Tx] {
        for kind in [OtherKind::NonIp, OtherKind::Overflow] {
            check_eq(
                &format!("{dir:?} {kind:?}"),
                &Count::default(),
                &snap.other(iface, dir, kind),
            )?;
        }
    }
    Ok(Outcome::Passed)
}

/// Starts the bulk transfer, kills `first` half a second into it and starts
/// the second daemon while the traffic still flows; returns once the
/// transfer is done.
fn kill_and_restart(
    veth: &Veth,
    config: &Config<'_>,
    first: Daemon,
    udp: &UdpStream,
    tcp_dst: IpAddr,
) -> Result<(TcpBulk, Daemon)> {
    thread::scope(|s| -> Result<_> {
        let tcp = s.spawn(|| {
            traffic::tcp_bulk_paced(
                &veth.client.ns,
                &veth.server.ns,
                SocketAddr::new(tcp_dst, 5201),
                TOTAL,
                PAUSE,
            )
        });
        thread::sleep(Duration::from_millis(500));
        // The point is to kill mid-flight: a machine so slow that half a
        // second is not mid-flight is an error in the test, not a pass.
        ensure!(
            !tcp.is_finished() && udp.is_running(),
            "the traffic ended before the daemon was killed; make TOTAL larger"
        );
        let log = first.kill()?;
        ensure!(!log.contains("exiting"), "SIGKILL ran an exit path:\n{log}");
        thread::sleep(Duration::from_millis(300));
        let second = Daemon::start(config)?;
        println!(
            "  killed and restarted; traffic still flowing after the restart: tcp {}, udp {}",
            !tcp.is_finished(),
            udp.is_running()
        );
        let bulk = tcp.join().expect("the transfer does not panic")?;
        Ok((bulk, second))
    })
}
