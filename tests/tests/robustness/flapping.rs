//! A thousand addresses added and removed at once, round after round,
//! while traffic flows: the daemon follows every change through
//! rtnetlink, keeps no memory of addresses that left, and counts exactly
//! what was sent to each address while it was there.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Dir, OtherKind, Veth,
    daemon::{Config, Launch},
    dump,
    link::Ipv6,
    stress::{self, UdpStream},
    traffic,
};

use crate::{Outcome, check_eq};

const ADDRESSES: usize = 1000;
/// Every this many flapping addresses, one gets a datagram per round.
const SAMPLE_EVERY: usize = 100;
/// The first round warms up (allocator arenas, the host table's capacity,
/// log buffers); RSS is compared between its end and the end of the rest.
const ROUNDS: usize = 4;
/// Growth of the daemon's RSS allowed over the measured rounds. The host
/// table holds about a hundred bytes per address, so a leak of every
/// address change (2000 per round, 6000 measured) would be megabytes;
/// 2 MiB leaves room for allocator slack and stays well below that.
const RSS_SLACK_KIB: u64 = 2048;
/// The daemon logs each change once it has seen it; a thousand at once
/// may take a moment on a loaded machine.
const FOLLOW: Duration = Duration::from_secs(60);

fn flapping(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        95,
        1 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

pub fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let client: IpAddr = "10.95.0.1".parse()?;
    let stable: IpAddr = "10.95.0.2".parse()?;
    veth.client.add_addr(client, 16)?;
    veth.server.add_addr(stable, 16)?;
    let sampled: Vec<IpAddr> = (0..ADDRESSES).step_by(SAMPLE_EVERY).map(flapping).collect();
    // Neighbours are kept whether or not the address is there, so that
    // no ARP ever runs.
    veth.know_each_other(&[client], &[&[stable], &sampled[..]].concat())?;

    let pins = BpfDir::new("srv")?;
    veth.server.ns.ip(&["link", "set", "lo", "up"])?;
    let listen: SocketAddr = "127.0.0.1:9864".parse()?;
    let mut daemon = Daemon::start_with(
        &Config::new(&veth.server.ns, &pins, &veth.server.ifname),
        &Launch {
            args: vec!["--listen".into(), listen.to_string().into()],
            ..Launch::default()
        },
    )?;
    let baseline = stress::rss_kib(daemon.pid())?;
    println!("  daemon RSS before any flapping: {baseline} KiB");
    let stream = UdpStream::start(
        &veth.client.ns,
        SocketAddr::new(client, 40000),
        &veth.server.ns,
        SocketAddr::new(stable, 5300),
    )?;
    let lab = Flapping::new(&veth, listen, sampled, client)?;

    let mut expected: BTreeMap<IpAddr, Count> = BTreeMap::new();
    let mut rss = Vec::new();
    for round in 1..=ROUNDS {
        rss.push(lab.round(&mut daemon, round, &mut expected)?);
    }
    ensure!(stream.is_running(), "the background stream stopped");
    let tally = stream.finish()?;
    println!("  background stream: {tally:?}");
    check_eq("datagrams received", &tally.sent.packets, &tally.received)?;
    expected.insert(stable, tally.sent);

    let iface = &veth.server.ifname;
    let snap = dump(&veth.server.ns, &pins)?;
    // Exactly the stable address and the sampled ones: an address that
    // got no traffic has no entry, whatever churn it went through.
    check_eq(
        "rx per address",
        &expected,
        &snap.addresses(iface, Dir::Rx, |_| true),
    )?;
    check_eq(
        "rx non_ip",
        &Count::default(),
        &snap.other(iface, Dir::Rx, OtherKind::NonIp),
    )?;

    let (warm, end) = (rss[0], rss[ROUNDS - 1]);
    println!("  RSS after the warm-up round {warm} KiB, after round {ROUNDS} {end} KiB");
    ensure!(
        end <= warm + RSS_SLACK_KIB,
        "the daemon's RSS grew from {warm} KiB to {end} KiB over {} rounds of {ADDRESSES} \
         address changes (allowed: {RSS_SLACK_KIB} KiB); per round: {rss:?}",
        ROUNDS - 1
    );
    lab.while_stopped(&daemon)?;
    ensure!(
        daemon.exited()?.is_none(),
        "the daemon exited:\n{}",
        daemon.log()
    );

    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// What every round uses: the `ip -batch` scripts that add and remove all
/// flapping addresses, the sampled ones, and a socket to send them from.
struct Flapping<'a> {
    veth: &'a Veth,
    listen: SocketAddr,
    add: String,
    del: String,
    last: IpAddr,
    sampled: Vec<IpAddr>,
    from: UdpSocket,
}

impl<'a> Flapping<'a> {
    fn new(
        veth: &'a Veth,
        listen: SocketAddr,
        sampled: Vec<IpAddr>,
        client: IpAddr,
    ) -> Result<Self> {
        let from = traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, 40001))?;
        let iface = &veth.server.ifname;
        let (mut add, mut del) = (String::new(), String::new());
        for i in 0..ADDRESSES {
            writeln!(add, "addr add {}/32 dev {iface}", flapping(i))?;
            writeln!(del, "addr del {}/32 dev {iface}", flapping(i))?;
        }
        Ok(Self {
            veth,
            listen,
            add,
            del,
            last: flapping(ADDRESSES - 1),
            sampled,
            from,
        })
    }

    /// Every flapping address added, each sampled one sent a datagram,
    /// every one removed; returns the daemon's RSS after.
    fn round(
        &self,
        daemon: &mut Daemon,
        round: usize,
        expected: &mut BTreeMap<IpAddr, Count>,
    ) -> Result<u64> {
        let (veth, listen, last) = (self.veth, self.listen, self.last);
        let iface = &veth.server.ifname;
        let since = daemon.log().len();
        stress::ip_batch(&veth.server.ns, &self.add)?;
        daemon.wait_for_line(
            since,
            &format!("address {last}/32 added on {iface}"),
            FOLLOW,
        )?;
        // The last one logged does not prove the rest arrived: a netlink
        // socket that overflows drops events silently.
        check_eq(
            &format!("flapping addresses the daemon holds after round {round}'s additions"),
            &ADDRESSES,
            &held(veth, listen)?,
        )?;
        // A socket per sampled address, only while the address exists.
        let sinks = self
            .sampled
            .iter()
            .map(|&addr| traffic::udp_socket(&veth.server.ns, SocketAddr::new(addr, 5301)))
            .collect::<Result<Vec<_>>>()?;
        for (&addr, sink) in self.sampled.iter().zip(&sinks) {
            let payload = 10 * round;
            traffic::one_way(&self.from, sink, payload)?;
            *expected.entry(addr).or_default() += Count::datagram(addr, payload);
        }
        drop(sinks);
        let since = daemon.log().len();
        stress::ip_batch(&veth.server.ns, &self.del)?;
        daemon.wait_for_line(
            since,
            &format!("address {last}/32 removed from {iface}"),
            FOLLOW,
        )?;
        check_eq(
            &format!("flapping addresses the daemon holds after round {round}'s removals"),
            &0,
            &held(veth, listen)?,
        )?;
        ensure!(
            daemon.exited()?.is_none(),
            "the daemon exited in round {round}:\n{}",
            daemon.log()
        );
        let kib = stress::rss_kib(daemon.pid())?;
        println!(
            "  round {round}: {} addresses added and removed; daemon RSS {kib} KiB",
            ADDRESSES
        );
        Ok(kib)
    }

    /// Last, a round with the daemon stopped (SIGSTOP) during each burst,
    /// as a loaded host may deschedule it: a thousand events cannot wait in
    /// its netlink socket's receive buffer, the kernel drops the rest and
    /// reports ENOBUFS, and the daemon has to start over from a dump.
    fn while_stopped(&self, daemon: &Daemon) -> Result<()> {
        let (veth, listen) = (self.veth, self.listen);
        for (batch, want, what) in [
            (&self.add, ADDRESSES, "additions"),
            (&self.del, 0, "removals"),
        ] {
            let paused = Paused::new(daemon.pid())?;
            stress::ip_batch(&veth.server.ns, batch)?;
            drop(paused);
            let seen = stress::poll(
                FOLLOW,
                &format!("the daemon to see all {what} made while it was stopped"),
                || Ok(held(veth, listen).ok().filter(|&n| n == want)),
                || format!("{:?} of {want} flapping addresses", held(veth, listen)),
            );
            if let Err(e) = seen {
                return Err(e.context(format!(
                    "after an overflow of its netlink socket; its log says:\n{}",
                    daemon
                        .log()
                        .lines()
                        .filter(|l| !l.contains("] address "))
                        .collect::<Vec<_>>()
                        .join("\n")
                )));
            }
            println!(
                "  {ADDRESSES} {what} while the daemon was stopped: all seen once it ran again"
            );
        }
        Ok(())
    }
}

/// How many of the flapping addresses the daemon's own view of the host
/// (`/api/v1/aliases`, where undocumented addresses are listed) holds.
fn held(veth: &Veth, listen: SocketAddr) -> Result<usize> {
    let reply = stress::http_get(&veth.server.ns, listen, "/api/v1/aliases")?;
    ensure!(
        reply.status == 200,
        "/api/v1/aliases answered {}",
        reply.status
    );
    let doc: serde_json::Value = serde_json::from_str(&reply.body)?;
    let rows = doc["aliases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(rows
        .iter()
        .filter(|r| r["state"] == "undocumented")
        .filter_map(|r| r["address"].as_str()?.parse::<IpAddr>().ok())
        .filter(
            |a| matches!(a, IpAddr::V4(v4) if v4.octets()[..2] == [10, 95] && v4.octets()[2] >= 1),
        )
        .count())
}

/// A process stopped with SIGSTOP until this guard is dropped (SIGCONT),
/// so that a failing test never leaves the daemon frozen.
struct Paused(libc::pid_t);

impl Paused {
    fn new(pid: u32) -> Result<Self> {
        let pid = pid as libc::pid_t;
        // SAFETY: kill(2) on our own child, which is not reaped while the
        // Daemon guard lives.
        let stopped = unsafe { libc::kill(pid, libc::SIGSTOP) } == 0;
        ensure!(stopped, "SIGSTOP: {}", std::io::Error::last_os_error());
        Ok(Self(pid))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}
