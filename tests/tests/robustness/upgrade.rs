//! The real upgrade, under traffic: the first release (layout v1, built
//! from git by `lab::first_release`) counts, stops with its links pinned,
//! and the binary under test starts on the same bpffs. It pins v2 maps (a
//! map per family) beside the v1 one and swaps the programs in the pinned
//! links, so v1 stops changing and readers add it to v2. Nothing is lost or
//! counted twice across the swap, in either family, and the old binary then
//! refuses to run over the newer layout instead of starting a third count.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    thread,
    time::Duration,
};

use aliasstat::bpf::pins;
use anyhow::{Context, Result, ensure};
use aya::maps::{Map, MapData, PerCpuHashMap};
use common::{AddrKey, Counters, names::ADDRESSES};
use lab::{
    BpfDir, Count, Daemon, Dir, Veth,
    daemon::{Config, Launch},
    first_release,
    link::Ipv6,
    procnet::Snmp,
    stress::UdpStream,
    traffic,
};

use crate::{Outcome, check_eq};

pub fn run() -> Result<Outcome> {
    // Built first: the first build takes minutes, and should not happen
    // with namespaces and a daemon waiting.
    let old_binary = match first_release::FIRST.binary()? {
        Ok(path) => path,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    println!(
        "  first release ({}): {}",
        first_release::FIRST.commit,
        old_binary.display()
    );
    let old = Launch {
        binary: Some(old_binary),
        ..Launch::default()
    };

    let veth = Veth::new(Ipv6::On)?;
    let client: IpAddr = "10.91.0.1".parse()?;
    let server: IpAddr = "10.91.0.2".parse()?;
    let client6: IpAddr = "fd91::1".parse()?;
    let server6: IpAddr = "fd91::2".parse()?;
    veth.client.add_addr(client, 24)?;
    veth.server.add_addr(server, 24)?;
    veth.client.add_addr(client6, 64)?;
    veth.server.add_addr(server6, 64)?;
    veth.know_each_other(&[client, client6], &[server, server6])?;
    let pins = BpfDir::new("srv")?;
    let config = Config::new(&veth.server.ns, &pins, &veth.server.ifname);
    let v6 = OneWay::new(&veth, client6, server6)?;

    let before = Snmp::read(&veth.client.ns)?;
    let first = Daemon::start_with(&config, &old)?;
    let stream = UdpStream::start(
        &veth.client.ns,
        SocketAddr::new(client, 40000),
        &veth.server.ns,
        SocketAddr::new(server, 5300),
    )?;
    let mut v6_sent = v6.send()?;
    thread::sleep(Duration::from_millis(300));
    // The default stop leaves the links pinned: counting goes on with the
    // v1 programs until the new daemon swaps them.
    first.stop()?;
    let new = Daemon::start(&config)?;
    ensure!(
        stream.is_running(),
        "the UDP stream stopped during the upgrade"
    );
    thread::sleep(Duration::from_millis(300));
    let tally = stream.finish()?;
    println!("  stream across the upgrade: {tally:?}");
    check_eq("datagrams received", &tally.sent.packets, &tally.received)?;

    for layout in [1, 2] {
        let dir = pins::maps_dir(pins.path(), layout);
        ensure!(dir.is_dir(), "no {} after the upgrade", dir.display());
    }
    // v1 is frozen now: more traffic changes v2 only.
    let v1_frozen = v1_total(pins.path())?;
    ensure!(
        v1_frozen.packets > 0,
        "v1 counted nothing before the upgrade: {v1_frozen}"
    );
    let from = traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, 40001))?;
    let to = traffic::udp_socket(&veth.server.ns, SocketAddr::new(server, 5301))?;
    let mut after_upgrade = Count::default();
    for payload in [1, 300, 1200] {
        traffic::one_way(&from, &to, payload)?;
        after_upgrade += Count::datagram(server, payload);
    }
    v6_sent += v6.send()?;
    check_eq("v1 after the upgrade", &v1_frozen, &v1_total(pins.path())?)?;

    let snap = lab::dump(&veth.server.ns, &pins)?;
    let sent = Snmp::read(&veth.client.ns)?.delta(&before, "Udp", "OutDatagrams")?;
    check_eq(
        "OutDatagrams against the sender's tally",
        &(tally.sent.packets + 3),
        &sent,
    )?;
    let rx = snap.addresses(&veth.server.ifname, Dir::Rx, |_| true);
    let counted = |addr| rx.get(&addr).copied().unwrap_or_default();
    let expected = tally.sent + after_upgrade;
    println!(
        "  v1 holds {v1_frozen}; v1 + v2: expected {expected}, counted {}; IPv6 expected {v6_sent}, counted {}",
        counted(server),
        counted(server6)
    );
    check_eq("rx v1 + v2", &expected, &counted(server))?;
    check_eq("rx v1 + v2, IPv6", &v6_sent, &counted(server6))?;
    new.stop()?;
    refuses_to_go_back(&config, &old)
}

/// Going back is refused: the old binary cannot read v2, and counting into
/// v1 again would split the counts.
fn refuses_to_go_back(config: &Config<'_>, old: &Launch) -> Result<Outcome> {
    let refused = match Daemon::start_with(config, old) {
        Ok(daemon) => {
            daemon.stop()?;
            anyhow::bail!("the first release started over layout v2 maps");
        }
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        refused.contains("layout v2, made by a newer aliasstat"),
        "the old binary failed, but not with the newer-layout error:\n{refused}"
    );
    println!(
        "  the old binary refuses: {}",
        refused
            .lines()
            .find(|l| l.contains("newer aliasstat"))
            .unwrap_or_default()
            .trim()
    );
    Ok(Outcome::Passed)
}

/// Three IPv6 datagrams from the client to the server, each waited for.
struct OneWay {
    from: std::net::UdpSocket,
    to: std::net::UdpSocket,
    server: IpAddr,
}

impl OneWay {
    fn new(veth: &Veth, client: IpAddr, server: IpAddr) -> Result<Self> {
        Ok(Self {
            from: traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, 40002))?,
            to: traffic::udp_socket(&veth.server.ns, SocketAddr::new(server, 5302))?,
            server,
        })
    }

    fn send(&self) -> Result<Count> {
        let mut sent = Count::default();
        for payload in [10, 500, 1100] {
            traffic::one_way(&self.from, &self.to, payload)?;
            sent += Count::datagram(self.server, payload);
        }
        Ok(sent)
    }
}

/// Every address counter in the v1 maps, summed over CPUs and keys: read
/// straight from the pin, since every aliasstat reader sums all layouts.
fn v1_total(bpffs: &Path) -> Result<Count> {
    let path = pins::maps_dir(bpffs, 1).join(ADDRESSES);
    let data = MapData::from_pin(&path).with_context(|| format!("opening {}", path.display()))?;
    let map: PerCpuHashMap<_, AddrKey, Counters> =
        PerCpuHashMap::try_from(Map::PerCpuHashMap(data))?;
    let mut total = Count::default();
    for entry in map.iter() {
        let (_, per_cpu) = entry?;
        for c in per_cpu.iter() {
            total += Count::new(c.packets, c.bytes);
        }
    }
    Ok(total)
}
