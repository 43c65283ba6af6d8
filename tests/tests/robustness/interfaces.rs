//! Interfaces that go away and come back: deleted and re-created (a new
//! ifindex, the old links gone with the old device), taken down and up
//! (the links stay), and one that does not exist yet when the daemon
//! starts. The daemon follows each on its own; /metrics and /healthz say
//! what it is doing meanwhile.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    thread,
    time::Duration,
};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Dir, Host, Netns, Veth,
    daemon::{Config, Launch},
    dump,
    link::Ipv6,
    stress::{self, UdpStream},
    traffic,
};

use crate::{Outcome, check_eq};

/// Where the daemon serves, inside the server namespace.
const LISTEN: &str = "127.0.0.1:9864";
/// Re-attaching follows a link event at once, or the 5 s reconcile tick
/// at the latest; this leaves room for a loaded machine.
const FOLLOW: Duration = Duration::from_secs(20);

struct Lab {
    veth: Veth,
    client: IpAddr,
    /// Gets exact batches of traffic.
    exact: IpAddr,
    /// Gets the background stream that runs through the changes.
    noise: IpAddr,
    listen: SocketAddr,
}

impl Lab {
    fn new(veth: Veth, net: u8) -> Result<Self> {
        let lab = Self {
            veth,
            client: IpAddr::from([10, net, 0, 1]),
            exact: IpAddr::from([10, net, 0, 2]),
            noise: IpAddr::from([10, net, 0, 9]),
            listen: LISTEN.parse()?,
        };
        lab.veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        Ok(lab)
    }

    fn configure(&self) -> Result<()> {
        stress::add_addresses(
            &self.veth,
            &[(self.client, 24)],
            &[(self.exact, 24), (self.noise, 24)],
        )
    }

    fn start_daemon(&self, pins: &BpfDir) -> Result<Daemon> {
        Daemon::start_with(
            &Config::new(&self.veth.server.ns, pins, &self.veth.server.ifname),
            &Launch {
                args: vec!["--listen".into(), LISTEN.into()],
                ..Launch::default()
            },
        )
    }

    /// Five datagrams of different sizes to the exact address, each seen
    /// by the receiving socket before the next; returns their count.
    /// A daemon attached and counting, a first batch it counted, and a
    /// background stream that goes on through what the case does next.
    fn counting(&self, pins: &BpfDir) -> Result<(Daemon, Count, UdpStream)> {
        let daemon = self.start_daemon(pins)?;
        self.wait_attached(1.0, 200)?;
        let first = self.batch(40000)?;
        Ok((daemon, first, self.noise()?))
    }

    fn batch(&self, port: u16) -> Result<Count> {
        let from = traffic::udp_socket(&self.veth.client.ns, SocketAddr::new(self.client, port))?;
        let to = traffic::udp_socket(&self.veth.server.ns, SocketAddr::new(self.exact, port))?;
        let mut sent = Count::default();
        for payload in [0, 10, 200, 700, 1400] {
            traffic::one_way(&from, &to, payload)?;
            sent += Count::datagram(self.exact, payload);
        }
        Ok(sent)
    }

    fn noise(&self) -> Result<UdpStream> {
        UdpStream::start(
            &self.veth.client.ns,
            SocketAddr::new(self.client, 39000),
            &self.veth.server.ns,
            SocketAddr::new(self.noise, 39000),
        )
    }

    fn metrics(&self) -> Result<String> {
        let reply = stress::http_get(&self.veth.server.ns, self.listen, "/metrics")?;
        ensure!(reply.status == 200, "/metrics answered {}", reply.status);
        Ok(reply.body)
    }

    fn healthz(&self) -> Result<u16> {
        Ok(stress::http_get(&self.veth.server.ns, self.listen, "/healthz")?.status)
    }

    /// Waits until both programs on the server's interface report
    /// `value` in `aliasstat_program_attached`, and /healthz `status`.
    fn wait_attached(&self, value: f64, status: u16) -> Result<()> {
        let iface = self.veth.server.ifname.as_str();
        let want = BTreeMap::from([
            ("receive".to_owned(), value),
            ("transmit".to_owned(), value),
        ]);
        stress::poll(
            FOLLOW,
            &format!("aliasstat_program_attached of {iface} to become {value}"),
            || Ok((stress::attached(&self.metrics()?, iface) == want).then_some(())),
            || {
                self.metrics()
                    .map(|m| format!("{:?}", stress::attached(&m, iface)))
                    .unwrap_or_else(|e| format!("{e:#}"))
            },
        )?;
        stress::poll(
            FOLLOW,
            &format!("/healthz to answer {status}"),
            || Ok((self.healthz()? == status).then_some(())),
            || format!("{:?}", self.healthz()),
        )?;
        println!("  {iface}: aliasstat_program_attached {value}, /healthz {status}");
        Ok(())
    }

    /// The exact address's rx on the server's interface as named now.
    fn exact_rx(&self, pins: &BpfDir) -> Result<Count> {
        Ok(dump(&self.veth.server.ns, pins)?
            .addresses(&self.veth.server.ifname, Dir::Rx, |_| true)
            .get(&self.exact)
            .copied()
            .unwrap_or_default())
    }

    /// rx of `addr` over every interface row, including the `if<N>` rows
    /// of deleted interfaces.
    fn rx_everywhere(&self, pins: &BpfDir, addr: IpAddr) -> Result<Count> {
        Ok(dump(&self.veth.server.ns, pins)?
            .addresses
            .iter()
            .filter(|r| r.address == addr && r.direction == Dir::Rx)
            .map(|r| r.count())
            .sum())
    }

    /// Fails unless the background stream's count grows while we watch.
    fn noise_grows(&self, pins: &BpfDir) -> Result<()> {
        let rows = |snap: &lab::Snapshot| {
            snap.addresses(&self.veth.server.ifname, Dir::Rx, |_| true)
                .get(&self.noise)
                .copied()
                .unwrap_or_default()
        };
        let first = rows(&dump(&self.veth.server.ns, pins)?);
        let grown = stress::poll(
            FOLLOW,
            "the background stream's count to grow",
            || {
                let now = rows(&dump(&self.veth.server.ns, pins)?);
                Ok((now.packets > first.packets).then_some(now))
            },
            || format!("{first}"),
        )?;
        println!("  background stream on the interface: {first} -> {grown}");
        Ok(())
    }
}

pub fn recreated() -> Result<Outcome> {
    let lab = Lab::new(Veth::new(Ipv6::Off)?, 92)?;
    lab.configure()?;
    let pins = BpfDir::new("srv")?;
    let (daemon, first, noise) = lab.counting(&pins)?;

    let since = daemon.log().len();
    let old_index = lab.veth.server.ifindex()?;
    // Deleting one end deletes the pair, and the links with the devices.
    lab.veth
        .client
        .ns
        .ip(&["link", "del", &lab.veth.client.ifname])?;
    daemon.wait_for_line(since, "is gone; waiting for it to come back", FOLLOW)?;
    lab.wait_attached(0.0, 503)?;

    lab.configure_recreated()?;
    let new_index = lab.veth.server.ifindex()?;
    ensure!(
        new_index != old_index,
        "the re-created interface kept ifindex {old_index}"
    );
    lab.wait_attached(1.0, 200)?;
    lab.noise_grows(&pins)?;
    let second = lab.batch(40001)?;
    ensure!(noise.is_running(), "the background stream stopped");
    let tally = noise.finish()?;
    println!("  background stream: {tally:?}");

    // The new device's row holds what came after; the old one's is kept
    // under its old index.
    check_eq(
        "rx on the re-created interface",
        &second,
        &lab.exact_rx(&pins)?,
    )?;
    check_eq(
        "rx over both devices",
        &(first + second),
        &lab.rx_everywhere(&pins, lab.exact)?,
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}

pub fn down_up() -> Result<Outcome> {
    let lab = Lab::new(Veth::new(Ipv6::Off)?, 93)?;
    lab.configure()?;
    let pins = BpfDir::new("srv")?;
    let (daemon, first, noise) = lab.counting(&pins)?;
    let index = lab.veth.server.ifindex()?;

    for host in [&lab.veth.server, &lab.veth.client] {
        host.ns.ip(&["link", "set", &host.ifname, "down"])?;
    }
    // A down interface keeps its tcx links: still attached, still healthy.
    lab.wait_attached(1.0, 200)?;
    thread::sleep(Duration::from_millis(200));
    for host in [&lab.veth.server, &lab.veth.client] {
        host.ns.ip(&["link", "set", &host.ifname, "up"])?;
    }
    // Addresses survive down/up, but the static neighbours do not.
    lab.veth
        .know_each_other(&[lab.client], &[lab.exact, lab.noise])?;
    lab.wait_attached(1.0, 200)?;
    check_eq("ifindex after down/up", &index, &lab.veth.server.ifindex()?)?;
    lab.noise_grows(&pins)?;
    let second = lab.batch(40001)?;
    let tally = noise.finish()?;
    println!("  background stream: {tally:?}");
    check_eq(
        "rx across down/up",
        &(first + second),
        &lab.exact_rx(&pins)?,
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}

pub fn late() -> Result<Outcome> {
    // The namespaces exist, the interface does not: it is created below,
    // by the same code that re-creates a deleted veth.
    let host = |role: &str, ifname: &str, last: u8| -> Result<Host> {
        let ns = Netns::new(role)?;
        ns.disable_ipv6()?;
        Ok(Host {
            ns,
            ifname: ifname.to_owned(),
            mac: [0x02, 0, 0, 0, 0x94, last],
        })
    };
    let veth = Veth {
        client: host("cli", "lab-late-c", 1)?,
        server: host("srv", "lab-late", 2)?,
    };
    let lab = Lab::new(veth, 94)?;
    let pins = BpfDir::new("srv")?;
    let daemon = lab.start_daemon(&pins)?;
    // Checked to the end before failing on it: whether the interface is
    // attached once it appears is worth knowing either way.
    let waiting = daemon
        .wait_for_line(
            0,
            "lab-late does not exist yet; waiting for it",
            Duration::ZERO,
        )
        .err();
    lab.wait_attached(0.0, 503)?;

    let since = daemon.log().len();
    lab.configure_recreated()?;
    daemon.wait_for_line(since, "attached to lab-late", FOLLOW)?;
    lab.wait_attached(1.0, 200)?;
    let sent = lab.batch(40000)?;
    check_eq("rx on the late interface", &sent, &lab.exact_rx(&pins)?)?;
    daemon.stop()?;
    if let Some(e) = waiting {
        // The line is logged before `ready`, so it is there or never.
        return Err(e.context("attached once created, but never said it was waiting"));
    }
    Ok(Outcome::Passed)
}

impl Lab {
    /// Creates the pair (again) with this lab's addresses.
    fn configure_recreated(&self) -> Result<()> {
        stress::recreate_veth(
            &self.veth,
            &[(self.client, 24)],
            &[(self.exact, 24), (self.noise, 24)],
        )
    }
}
