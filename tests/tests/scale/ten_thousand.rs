//! Ten thousand addresses on one veth, one datagram of its own size to
//! each, and an alias file that documents them with a known drift: some
//! undocumented, some missing, some on the wrong interface. `check`
//! reports exactly that drift, `aliases --json` gives every address its
//! state and exactly its packets, and so do `/metrics` and a real
//! Prometheus that scrapes it.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::SystemTime,
};

use anyhow::{Context as _, Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Netns, Veth,
    aliases::{self, State},
    daemon::Config,
    harness::{Outcome, check_eq},
    http,
    link::Ipv6,
    prometheus::Prometheus,
    scratch::Scratch,
    stress, traffic,
};

/// Addresses configured on the server's veth.
const CONFIGURED: usize = 10_000;
/// Of those, the last this many are left out of the file.
const UNDOCUMENTED: usize = 10;
/// Documented but not configured.
const MISSING: usize = 7;
/// Of the documented and configured, every this many is expected on `lo`.
const MISPLACED_EVERY: usize = 1250;
const PORT: u16 = 5300;
/// The Prometheus job that scrapes the daemon.
const JOB: &str = "aliasstat";

/// The i-th alias address, in 10.97.0.0/16: off the client's subnet, so it
/// reaches them through one route and one neighbour, without ARP for each.
fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 97, (i / 250) as u8, 1 + (i % 250) as u8))
}

/// Payloads differ per address, so a count filed under the wrong one shows.
fn payload(i: usize) -> usize {
    1 + i % 13
}

struct Plan {
    file: String,
    /// The exact `check` report.
    report: String,
}

fn plan(iface: &str, server: IpAddr) -> Result<Plan> {
    let mut file =
        format!("[[alias]]\nname = \"primary\"\naddress = \"{server}\"\ninterface = \"{iface}\"\n");
    let (mut undocumented, mut misplaced) = (String::new(), String::new());
    for i in 0..CONFIGURED {
        let a = address(i);
        if i >= CONFIGURED - UNDOCUMENTED {
            writeln!(undocumented, "undocumented: {a}/32 on {iface}")?;
            continue;
        }
        let expected = if i % MISPLACED_EVERY == 0 {
            "lo"
        } else {
            iface
        };
        write!(
            file,
            "[[alias]]\nname = \"vhost-{i}\"\naddress = \"{a}\"\nowner = \"customer-{i}\"\ninterface = \"{expected}\"\n"
        )?;
        if expected == "lo" {
            writeln!(
                misplaced,
                "misplaced: alias \"vhost-{i}\" ({a}) is expected on lo but is on {iface}"
            )?;
        }
    }
    let mut missing = String::new();
    for i in CONFIGURED..CONFIGURED + MISSING {
        let a = address(i);
        write!(file, "[[alias]]\nname = \"gone-{i}\"\naddress = \"{a}\"\n")?;
        writeln!(
            missing,
            "missing: alias \"gone-{i}\" ({a}) is not configured on this host"
        )?;
    }
    Ok(Plan {
        file,
        report: undocumented + &missing + &misplaced,
    })
}

pub fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let (client, server): (IpAddr, IpAddr) = ("10.96.0.1".parse()?, "10.96.0.2".parse()?);
    stress::alias_veth(
        &veth,
        (client, server),
        "10.97.0.0/16",
        (0..CONFIGURED).map(address),
    )?;
    let iface = veth.server.ifname.clone();

    let plan = plan(&iface, server)?;
    let dir = Scratch::new("scale")?;
    let config = dir.write("aliases.toml", &plan.file)?;
    let pins = BpfDir::new("srv")?;
    let listen: SocketAddr = "127.0.0.1:9864".parse()?;
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        listen: Some(listen),
        map_capacity: Some(2 * CONFIGURED as u32),
        ..Config::new(&veth.server.ns, &pins, &iface)
    })?;
    let expected = send_to_each(&veth, client)?;

    let checked = aliases::check(Some(&veth.server.ns), &config)?;
    check_eq("check's exit status", &1, &checked.code)?;
    check_eq("check's report", &plan.report, &checked.stdout)?;

    let listed = aliases::aliases(&veth.server.ns, &pins, &config)?;
    let rows: Vec<_> = listed
        .aliases
        .iter()
        .filter(|r| r.scope.as_deref() != Some("host"))
        .collect();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *states.entry(format!("{:?}", r.state)).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = [
        ("Documented", CONFIGURED - UNDOCUMENTED + 1),
        ("Absent", MISSING),
        ("Undocumented", UNDOCUMENTED),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_owned(), n))
    .collect();
    check_eq("rows per state in aliases --json", &want, &states)?;
    let counted: BTreeMap<IpAddr, Count> = rows
        .iter()
        .filter(|r| r.state != State::Absent || r.rx().packets > 0)
        .filter(|r| r.address != server)
        .map(|r| (r.address, r.rx()))
        .collect();
    check_eq(
        "received per address in aliases --json",
        &expected,
        &counted,
    )?;

    let metrics = http::get(&veth.server.ns, listen, "/metrics")?;
    let scraped = received_packets(metrics.text()?)?;
    let packets: BTreeMap<IpAddr, u64> = expected.iter().map(|(a, c)| (*a, c.packets)).collect();
    check_eq(
        "aliasstat_receive_packets_total per address",
        &packets,
        &scraped,
    )?;
    check_eq(
        "aliasstat_receive_packets_total per address, through Prometheus",
        &packets,
        &through_prometheus(&veth.server.ns, listen)?,
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// One datagram to each configured address, each waited for, so none is
/// lost in a queue: what every address must show.
fn send_to_each(veth: &Veth, client: IpAddr) -> Result<BTreeMap<IpAddr, Count>> {
    let from = traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, 40000))?;
    // One socket on the wildcard address receives for all of them.
    let sink = traffic::udp_socket(
        &veth.server.ns,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT),
    )?;
    let mut expected = BTreeMap::new();
    let mut buf = [0u8; 64];
    for i in 0..CONFIGURED {
        let to = SocketAddr::new(address(i), PORT);
        let sent = from
            .send_to(&vec![0x5a; payload(i)], to)
            .with_context(|| format!("failed to send to {to}"))?;
        ensure!(sent == payload(i), "short send to {to}");
        let (got, src) = sink
            .recv_from(&mut buf)
            .with_context(|| format!("the datagram to {to} did not arrive"))?;
        ensure!(
            got == payload(i) && src.ip() == client,
            "unexpected datagram for {to}"
        );
        expected.insert(address(i), Count::datagram(address(i), payload(i)));
    }
    Ok(expected)
}

/// `aliasstat_receive_packets_total` by address, as a real Prometheus
/// scraped it from the daemon and answers a query for it.
fn through_prometheus(ns: &Netns, listen: SocketAddr) -> Result<BTreeMap<IpAddr, u64>> {
    let prom = Prometheus::start(ns, JOB, &[listen])?;
    let at = prom.scraped_after(JOB, listen, SystemTime::now())?;
    let mut out = BTreeMap::new();
    for s in prom.query(
        "sum by (address) (aliasstat_receive_packets_total)",
        Some(at),
    )? {
        let address: IpAddr = s
            .labels
            .get("address")
            .context("a query result without an address")?
            .parse()?;
        out.insert(address, s.value as u64);
    }
    Ok(out)
}

/// `aliasstat_receive_packets_total` by address, summed over interfaces.
fn received_packets(text: &str) -> Result<BTreeMap<IpAddr, u64>> {
    let mut out = BTreeMap::new();
    for (labels, value) in stress::samples(text, "aliasstat_receive_packets_total") {
        let address: IpAddr = labels
            .get("address")
            .context("a receive sample without an address")?
            .parse()?;
        *out.entry(address).or_default() += value as u64;
    }
    Ok(out)
}
