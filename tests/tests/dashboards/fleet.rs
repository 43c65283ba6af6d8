//! The lab of the dashboards test: two hosts and a stale router on one
//! bridge with a client, traffic to every alias, the VIP's move, and the
//! waits for Prometheus's recording rules.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, ensure};
use lab::{
    Host,
    background::{Echoed, Pace, Traffic},
    frames, grafana, ip,
    lan::Lan,
    poll::QUERIES,
    prometheus::{Prometheus, unix_seconds},
    traffic::{self, PacketSocket},
};

use crate::plan::{
    A, B, BROADCAST, CLIENT, ECHO_PORT, IFACE, MULTICAST, PAST_A_MINUTE, PATIENCE, Plan, ROUTER,
    VIP, instance,
};

pub fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

pub fn repo_file(relative: &str) -> Result<PathBuf> {
    let path = grafana::dashboards_dir().join(relative);
    path.canonicalize()
        .with_context(|| format!("no {}", path.display()))
}

/// The client, hosts A and B, and a third "server" namespace on the bridge
/// that plays the stale router, addressed as the lab needs them.
pub fn set_up(lan: &Lan) -> Result<()> {
    let (client, a, b, router) = (
        &lan.client,
        &lan.servers[0],
        &lan.servers[1],
        &lan.servers[2],
    );
    client.add_addr(ip(CLIENT), 24)?;
    // Prometheus's API listens on the client's loopback.
    client.ns.ip(&["link", "set", "lo", "up"])?;
    // Link-local multicast still needs a route to leave by.
    client
        .ns
        .ip(&["route", "add", "224.0.0.0/4", "dev", &client.ifname])?;
    router.add_addr(ip(ROUTER), 24)?;
    configure(a, &A, true)?;
    configure(b, &B, false)
}

/// Configures a host's addresses, in the order a host boots: the primary
/// first, so the others are its secondaries.
fn configure(host: &Host, plan: &Plan, vip: bool) -> Result<()> {
    host.add_addr(ip(plan.primary), 24)?;
    for a in plan.served {
        host.add_addr(ip(a), 24)?;
    }
    if vip {
        host.add_addr(ip(VIP), 24)?;
    }
    // The echo servers bind to the VIP before it is theirs (B's) and keep
    // their socket after it has gone (A's), as a keepalived-managed
    // service does.
    host.ns.sysctl("net.ipv4.ip_nonlocal_bind", "1")
}

/// The lab's traffic, and the answers per echo server ("A 10.76.0.11": each
/// host has its own for the VIP).
pub struct Flows {
    pub traffic: Traffic,
    pub sent: Arc<AtomicU64>,
    pub replied: BTreeMap<String, Arc<Echoed>>,
}

impl Flows {
    /// A flow to every served address and to the VIP, each answered; sizes
    /// differ per address so nothing adds up by accident. Then broadcast,
    /// multicast, and the stale router's flow to the VIP.
    pub fn start(lan: &Lan) -> Result<Self> {
        let (client, a, b) = (&lan.client, &lan.servers[0], &lan.servers[1]);
        let mut flows = Self {
            traffic: Traffic::default(),
            sent: Arc::new(AtomicU64::new(0)),
            replied: BTreeMap::new(),
        };
        for (host, plan, name) in [(a, &A, "A"), (b, &B, "B")] {
            for (i, address) in plan.served.iter().chain([&VIP]).enumerate() {
                let socket =
                    traffic::udp_socket(&host.ns, SocketAddr::new(ip(address), ECHO_PORT))?;
                let seen = Arc::new(Echoed::default());
                flows.traffic.echo(socket, 40 + 10 * i, seen.clone())?;
                flows.replied.insert(format!("{name} {address}"), seen);
            }
        }
        for (i, address) in A.served.iter().chain(&B.served).chain([&VIP]).enumerate() {
            let socket =
                traffic::udp_socket(&client.ns, SocketAddr::new(ip(CLIENT), 40000 + i as u16))?;
            flows.flow(socket, ip_port(address, ECHO_PORT), 100 + 50 * i, 20);
        }
        let broadcast = traffic::udp_socket(&client.ns, SocketAddr::new(ip(CLIENT), 40100))?;
        broadcast.set_broadcast(true)?;
        flows.flow(broadcast, ip_port(BROADCAST, 5400), 60, 200);
        let multicast = traffic::udp_socket(&client.ns, SocketAddr::new(ip(CLIENT), 40101))?;
        multicast.set_multicast_loop_v4(false)?;
        flows.flow(multicast, ip_port(MULTICAST, 5400), 40, 200);
        flows.start_router(lan)?;
        Ok(flows)
    }

    /// The router starts once A has answered on the VIP: by then the bridge
    /// has learnt A's MAC, so the router's frames to it are never flooded
    /// to B (which would count them as traffic to its absent VIP).
    fn start_router(&mut self, lan: &Lan) -> Result<()> {
        let (a, router) = (&lan.servers[0], &lan.servers[2]);
        self.answering_on_the_vip("A")?;
        router.add_neighbour(ip(VIP), a.mac)?;
        let stale = traffic::udp_socket(&router.ns, SocketAddr::new(ip(ROUTER), 40200))?;
        self.flow(stale, ip_port(VIP, ECHO_PORT), 80, 100);
        Ok(())
    }

    fn flow(&mut self, socket: std::net::UdpSocket, to: SocketAddr, payload: usize, every_ms: u64) {
        let pace = Pace {
            to,
            payload,
            every: Duration::from_millis(every_ms),
            limit: u64::MAX,
        };
        self.traffic.flow(socket, pace, self.sent.clone());
    }

    /// Waits until `host`'s echo server on the VIP has answered.
    fn answering_on_the_vip(&self, host: &str) -> Result<()> {
        let server = &self.replied[&format!("{host} {VIP}")];
        QUERIES.until(
            &format!("{host} answering on the VIP"),
            PATIENCE,
            || Ok(server.replied.load(Ordering::SeqCst)),
            |&n| n > 0,
        )?;
        Ok(())
    }

    /// Stops the traffic and prints what went.
    pub fn finish(self) -> Result<()> {
        self.traffic.finish()?;
        println!(
            "  {} datagrams sent; replies: {:?}",
            self.sent.load(Ordering::SeqCst),
            self.replied
                .iter()
                .map(|(a, n)| (a.as_str(), n.replied.load(Ordering::SeqCst)))
                .collect::<BTreeMap<_, _>>()
        );
        Ok(())
    }
}

fn ip_port(address: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(address), port)
}

/// The failover: A lets go, B takes over and announces it with a
/// gratuitous ARP, as keepalived does, and the client forgets A's MAC.
/// The router's permanent entry keeps pointing at A. Returns when it began.
pub fn move_vip(lan: &Lan, flows: &Flows) -> Result<f64> {
    let (client, a, b) = (&lan.client, &lan.servers[0], &lan.servers[1]);
    let moved_at = now();
    a.ns.ip(&["addr", "del", &format!("{VIP}/24"), "dev", IFACE])?;
    b.ns.ip(&["addr", "add", &format!("{VIP}/24"), "dev", IFACE])?;
    let vip4: Ipv4Addr = VIP.parse()?;
    PacketSocket::sender(b)?.send(&frames::arp_request(b.mac, vip4, vip4))?;
    client
        .ns
        .ip(&["neigh", "flush", "to", VIP, "dev", &client.ifname])?;
    flows.answering_on_the_vip("B")?;
    Ok(moved_at)
}

/// The VIP's presence per instance as the recording rule had it at `at`:
/// instance -> (value, when the rule recorded it).
fn vip_presence(prom: &Prometheus<'_>, at: f64) -> Result<BTreeMap<String, (f64, f64)>> {
    let series = r#"interface_address:aliasstat_address_present:alias{alias="vip"}"#;
    let values = prom.query(&format!("max by (instance) ({series})"), Some(at))?;
    let stamps = prom.query(
        &format!("max by (instance) (timestamp({series}))"),
        Some(at),
    )?;
    values
        .into_iter()
        .map(|v| {
            let instance = v.labels.get("instance").cloned().unwrap_or_default();
            let stamp = stamps
                .iter()
                .find(|s| s.labels.get("instance") == Some(&instance))
                .with_context(|| format!("no recording time for {instance}"))?;
            Ok((instance, (v.value, stamp.value)))
        })
        .collect()
}

/// The last time the recording rules ran, as far as their output shows.
pub fn rules_ran(prom: &Prometheus<'_>) -> Result<f64> {
    let ran = prom.query(
        "max(timestamp(interface_address:aliasstat_address_present:alias))",
        None,
    )?;
    Ok(ran.first().map_or(0.0, |s| s.value))
}

/// Waits until the recording rules have the VIP on A as `a` and on B as
/// `b`, then until they have run past the next whole minute, and returns
/// that minute. The fleet view's "moves" table samples at whole minutes:
/// each state of the VIP needs one minute boundary of its own.
pub fn hold_across_a_minute(prom: &Prometheus<'_>, a: f64, b: f64) -> Result<f64> {
    let (ia, ib) = (instance(&A), instance(&B));
    let want = |p: &BTreeMap<String, (f64, f64)>| {
        p.get(&ia).map(|v| v.0) == Some(a) && p.get(&ib).map(|v| v.0) == Some(b)
    };
    let reached = QUERIES.until(
        &format!("the rules recording the VIP as {a} on A and {b} on B"),
        PATIENCE,
        || vip_presence(prom, now()),
        want,
    )?;
    let since = reached.values().map(|v| v.1).fold(0.0, f64::max);
    let minute = (since / 60.0).ceil() * 60.0;
    QUERIES.until(
        "the recording rules running past the next whole minute",
        PAST_A_MINUTE,
        || rules_ran(prom),
        |&ran| ran >= minute,
    )?;
    let at_minute = vip_presence(prom, minute)?;
    ensure!(
        want(&at_minute),
        "at {minute} the rules had {at_minute:?}, not A={a}, B={b}"
    );
    Ok(minute)
}
