//! An upgrade to a binary with a new map layout, under traffic: the new
//! daemon pins v2 maps beside the v1 ones and swaps the programs in the
//! pinned links, so v1 stops changing and readers add it to v2. Nothing is
//! lost or counted twice across the swap, and the old binary then refuses
//! to run over the newer layout instead of starting a third count.

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
    link::Ipv6,
    procnet::Snmp,
    stress::{self, UdpStream},
    traffic,
};

use crate::{Outcome, check_eq};

pub fn run() -> Result<Outcome> {
    // Built first: the first build takes minutes, and should not happen
    // with namespaces and a daemon waiting.
    let upgraded = stress::upgrade_binary()?;
    println!("  upgraded binary: {}", upgraded.display());

    let veth = Veth::new(Ipv6::Off)?;
    let client: IpAddr = "10.91.0.1".parse()?;
    let server: IpAddr = "10.91.0.2".parse()?;
    veth.client.add_addr(client, 24)?;
    veth.server.add_addr(server, 24)?;
    veth.know_each_other(&[client], &[server])?;
    let pins = BpfDir::new("srv")?;
    let config = Config::new(&veth.server.ns, &pins, &veth.server.ifname);

    let before = Snmp::read(&veth.client.ns)?;
    let old = Daemon::start(&config)?;
    let stream = UdpStream::start(
        &veth.client.ns,
        SocketAddr::new(client, 40000),
        &veth.server.ns,
        SocketAddr::new(server, 5300),
    )?;
    thread::sleep(Duration::from_millis(300));
    // The default stop leaves the links pinned: counting goes on with the
    // v1 programs until the new daemon swaps them.
    old.stop()?;
    let new = Daemon::start_with(
        &config,
        &Launch {
            binary: Some(upgraded.clone()),
            ..Launch::default()
        },
    )?;
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
    check_eq("v1 after the upgrade", &v1_frozen, &v1_total(pins.path())?)?;

    let snap = stress::dump_with(&upgraded, &veth.server.ns, &pins)?;
    let sent = Snmp::read(&veth.client.ns)?.delta(&before, "Udp", "OutDatagrams")?;
    check_eq(
        "OutDatagrams against the sender's tally",
        &(tally.sent.packets + 3),
        &sent,
    )?;
    let expected = tally.sent + after_upgrade;
    let counted = snap
        .addresses(&veth.server.ifname, Dir::Rx, |_| true)
        .get(&server)
        .copied()
        .unwrap_or_default();
    println!("  v1 holds {v1_frozen}; v1 + v2: expected {expected}, counted {counted}");
    check_eq("rx v1 + v2", &expected, &counted)?;
    new.stop()?;

    // Going back is refused: the old binary cannot read v2, and counting
    // into v1 again would split the counts.
    let refused = match Daemon::start(&config) {
        Ok(daemon) => {
            daemon.stop()?;
            anyhow::bail!("the v1 binary started over layout v2 maps");
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
