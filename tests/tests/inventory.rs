//! The alias inventory against a live host (issue 3): addresses that come
//! and go under traffic, a VIP that moves between two hosts, labels and
//! IPv6 flags, the alias file's errors, `aliasstat check`, and SIGHUP.
//!
//! Real kernel, real rtnetlink, real traffic between network namespaces,
//! checked against exact counts derived from what each test sent. Needs
//! root: run with `cargo xtask test -- <filter>`, or `cargo test --release
//! -p lab --test inventory` with `ALIASSTAT_BIN` set.

use std::{
    net::{IpAddr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use lab::{
    BpfDir, Count, Daemon, Netns, Veth,
    aliases::{self, Aliases, Checked, State},
    daemon::Config,
    frames::{UDP_HLEN, ip_header_len},
    http,
    lan::Lan,
    link::Ipv6,
    prereq,
    prometheus::{self, parse_text},
    scratch::Scratch,
    traffic,
};

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5300;
/// The promise: an address change is logged within a second.
const LOG_PROMPTLY: Duration = Duration::from_secs(1);
/// A bound on waits for things that have no deadline of their own (a
/// SIGHUP's log line, counts of packets already sent); only a hang comes
/// near it.
const PATIENCE: Duration = Duration::from_secs(10);

/// One UDP datagram with `payload` bytes, as counted at the IP layer.
fn datagram(addr: IpAddr, payload: usize) -> Count {
    Count::one((ip_header_len(addr) + UDP_HLEN + payload) as u64)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a valid address literal")
}

/// `n` times `one` (a datagram's count).
fn times(n: u64, one: Count) -> Count {
    Count::new(n * one.packets, n * one.bytes)
}

/// Polls `read` until `done` accepts it, for at most `within`. Address events arrive within milliseconds.
fn poll<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    read: impl FnMut() -> Result<T>,
    done: impl Fn(&T) -> bool,
) -> Result<T> {
    lab::poll::until(what, within, Duration::from_millis(20), read, done)
}

/// Runs an `ip` change in `ns` and waits for the daemon's log line about
/// it, which must come within [`LOG_PROMPTLY`] of starting the command.
fn change_and_expect_log(daemon: &Daemon, ns: &Netns, args: &[&str], line: &str) -> Result<()> {
    let since = daemon.log().len();
    let started = Instant::now();
    ns.ip(args)?;
    let logged = daemon.wait_for_line(since, line, LOG_PROMPTLY)?;
    println!(
        "  `ip {}` logged after {:?}: {}",
        args.join(" "),
        started.elapsed(),
        logged.trim()
    );
    Ok(())
}

/// A loop on its own thread until told to stop, e.g. a UDP flow.
struct Background<T: Send + 'static> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Background<T> {
    fn spawn(body: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Self {
            stop,
            thread: Some(thread::spawn(move || body(&flag))),
        }
    }

    fn finish(mut self) -> T {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().expect("joined once").join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T: Send + 'static> Drop for Background<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// At most this many datagrams per flow, so a flow that is never stopped
/// still ends (40 s at one per 2 ms).
const FLOW_LIMIT: u64 = 20_000;

/// Datagrams of `payload` bytes from `socket` to `to`, one every 2 ms,
/// until stopped. `sent` counts those the kernel accepted; the thread
/// returns the final count.
fn flow(
    socket: UdpSocket,
    to: SocketAddr,
    payload: usize,
    sent: Arc<AtomicU64>,
) -> Background<Result<u64>> {
    Background::spawn(move |stop| {
        let data = vec![0x5a; payload];
        while !stop.load(Ordering::SeqCst) && sent.load(Ordering::SeqCst) < FLOW_LIMIT {
            let n = socket
                .send_to(&data, to)
                .with_context(|| format!("failed to send to {to}"))?;
            ensure!(n == payload, "sent {n} of {payload} bytes to {to}");
            sent.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(2));
        }
        Ok(sent.load(Ordering::SeqCst))
    })
}

/// What an [`echo`] server did.
#[derive(Debug, Default)]
struct Echoed {
    received: AtomicU64,
    /// Replies the kernel accepted, each of which left through the
    /// server's egress hook with the alias as its source.
    replied: AtomicU64,
}

/// Answers every datagram on `socket` with `reply` bytes until stopped. A
/// reply that fails (the bound address is gone) is not counted.
fn echo(socket: UdpSocket, reply: usize, seen: Arc<Echoed>) -> Background<Result<()>> {
    Background::spawn(move |stop| {
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        let data = vec![0xa5; reply];
        let mut buf = vec![0; 65536];
        while !stop.load(Ordering::SeqCst) {
            let Ok((_, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            seen.received.fetch_add(1, Ordering::SeqCst);
            if socket.send_to(&data, from).is_ok_and(|n| n == reply) {
                seen.replied.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    })
}

#[test]
fn alias_comes_and_goes_while_udp_flows() -> Result<()> {
    prereq::require()?;
    let veth = Veth::new(Ipv6::On)?;
    let (client4, client6) = (ip("10.75.0.1"), ip("fd00:75::1"));
    let (primary4, primary6) = (ip("10.75.0.2"), ip("fd00:75::2"));
    // The IPv4 alias is undocumented (foreign once it leaves), the IPv6 one
    // documented (absent once it leaves).
    let (alias4, alias6) = (ip("10.75.0.7"), ip("fd00:75::7"));
    veth.client.add_addr(client4, 24)?;
    veth.client.add_addr(client6, 64)?;
    veth.server.add_addr(primary4, 24)?;
    veth.server.add_addr(primary6, 64)?;
    // The client reaches the aliases by MAC before the server holds them,
    // as it would reach a VIP through a stale neighbour entry.
    veth.know_each_other(&[client4, client6], &[primary4, primary6, alias4, alias6])?;
    // The echo servers bind to the aliases before they exist, so that they
    // answer from the very first datagram that the stack delivers.
    veth.server.ns.sysctl("net.ipv4.ip_nonlocal_bind", "1")?;
    veth.server.ns.sysctl("net.ipv6.ip_nonlocal_bind", "1")?;

    let dir = Scratch::new("inv")?;
    let config = dir.write(
        "aliases.toml",
        "[[alias]]\nname = \"api-v6\"\naddress = \"fd00:75::7\"\nowner = \"api-team\"\npurpose = \"REST API over IPv6\"\n",
    )?;
    let pins = BpfDir::new("srv")?;
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        ..Config::new(&veth.server.ns, &pins, &veth.server.ifname)
    })?;
    let inventory = || aliases::aliases(&veth.server.ns, &pins, &config);

    // Sizes differ per family and direction, so misfiled counts show.
    let (request4, reply4, request6, reply6) = (111, 22, 333, 44);
    let sent4 = Arc::new(AtomicU64::new(0));
    let sent6 = Arc::new(AtomicU64::new(0));
    let echoed4 = Arc::new(Echoed::default());
    let echoed6 = Arc::new(Echoed::default());
    let server4 = echo(
        traffic::udp_socket(&veth.server.ns, SocketAddr::new(alias4, SERVER_PORT))?,
        reply4,
        echoed4.clone(),
    );
    let server6 = echo(
        traffic::udp_socket(&veth.server.ns, SocketAddr::new(alias6, SERVER_PORT))?,
        reply6,
        echoed6.clone(),
    );
    let flow4 = flow(
        traffic::udp_socket(&veth.client.ns, SocketAddr::new(client4, CLIENT_PORT))?,
        SocketAddr::new(alias4, SERVER_PORT),
        request4,
        sent4.clone(),
    );
    let flow6 = flow(
        traffic::udp_socket(&veth.client.ns, SocketAddr::new(client6, CLIENT_PORT))?,
        SocketAddr::new(alias6, SERVER_PORT),
        request6,
        sent6.clone(),
    );

    // Before the aliases exist the server drops the datagrams, but its
    // ingress hook has counted them by destination already.
    let before = poll(
        "datagrams to the aliases counted before they exist",
        PATIENCE,
        inventory,
        |a| {
            [alias4, alias6]
                .iter()
                .all(|&x| a.row(x).is_ok_and(|r| r.rx.packets >= 3))
        },
    )?;
    ensure!(before.row(alias4)?.state == State::Foreign, "{before:#?}");
    ensure!(before.row(alias6)?.state == State::Absent, "{before:#?}");
    ensure!(
        echoed4.received.load(Ordering::SeqCst) == 0
            && echoed6.received.load(Ordering::SeqCst) == 0,
        "a server received a datagram for an address it does not hold"
    );

    let srv = &veth.server;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &[
            "addr",
            "add",
            "10.75.0.7/24",
            "dev",
            &srv.ifname,
            "label",
            "lab-srv:7",
        ],
        "address 10.75.0.7/24 added on lab-srv (label lab-srv:7): undocumented",
    )?;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &["addr", "add", "fd00:75::7/64", "dev", &srv.ifname, "nodad"],
        "address fd00:75::7/64 added on lab-srv: alias \"api-v6\" is documented",
    )?;
    poll(
        "both servers answering",
        PATIENCE,
        || {
            Ok((
                echoed4.replied.load(Ordering::SeqCst),
                echoed6.replied.load(Ordering::SeqCst),
            ))
        },
        |&(r4, r6)| r4 >= 5 && r6 >= 5,
    )?;
    let present = inventory()?;
    let (row4, row6) = (present.row(alias4)?, present.row(alias6)?);
    for (row, state, label, alias) in [
        (row4, State::Undocumented, Some("lab-srv:7"), None),
        (row6, State::Documented, None, Some("api-v6")),
    ] {
        ensure!(
            row.state == state
                && row.interface.as_deref() == Some("lab-srv")
                && row.label.as_deref() == label
                && row.alias.as_deref() == alias
                && row.tx.packets > 0
                && row.rx.packets > row.tx.packets,
            "while present: {row:#?}"
        );
    }
    ensure!(
        row6.owner.as_deref() == Some("api-team")
            && row6.purpose.as_deref() == Some("REST API over IPv6"),
        "{row6:#?}"
    );

    change_and_expect_log(
        &daemon,
        &srv.ns,
        &["addr", "del", "10.75.0.7/24", "dev", &srv.ifname],
        "address 10.75.0.7/24 removed from lab-srv (label lab-srv:7): foreign",
    )?;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &["addr", "del", "fd00:75::7/64", "dev", &srv.ifname],
        "address fd00:75::7/64 removed from lab-srv: alias \"api-v6\" is absent",
    )?;
    // Keep flowing into the void for a while: still counted on ingress.
    let (at4, at6) = (sent4.load(Ordering::SeqCst), sent6.load(Ordering::SeqCst));
    poll(
        "datagrams sent after the removal",
        PATIENCE,
        || Ok((sent4.load(Ordering::SeqCst), sent6.load(Ordering::SeqCst))),
        |&(s4, s6)| s4 >= at4 + 5 && s6 >= at6 + 5,
    )?;
    let total4 = flow4.finish()?;
    let total6 = flow6.finish()?;
    server4.finish()?;
    server6.finish()?;
    let replied4 = echoed4.replied.load(Ordering::SeqCst);
    let replied6 = echoed6.replied.load(Ordering::SeqCst);

    let expected = [
        (
            alias4,
            times(total4, datagram(alias4, request4)),
            times(replied4, datagram(alias4, reply4)),
            State::Foreign,
        ),
        (
            alias6,
            times(total6, datagram(alias6, request6)),
            times(replied6, datagram(alias6, reply6)),
            State::Absent,
        ),
    ];
    // Every datagram was sent before this; wait until the last ones have
    // crossed the veth, then the counts must be exact.
    let after = poll(
        "all sent datagrams counted",
        PATIENCE,
        inventory,
        |a: &Aliases| {
            expected
                .iter()
                .all(|(x, rx, _, _)| a.row(*x).is_ok_and(|r| r.rx.packets >= rx.packets))
        },
    )?;
    for (address, rx, tx, state) in expected {
        let row = after.row(address)?;
        println!(
            "  {address}: sent {rx}, replied {tx}; counted rx {}, tx {}; {:?}",
            row.rx(),
            row.tx(),
            row.state
        );
        ensure!(
            row.rx() == rx && row.tx() == tx && row.state == state,
            "{address}: expected rx {rx}, tx {tx}, {state:?}; got {row:#?}"
        );
        ensure!(
            row.interface.is_none() && row.label.is_none() && row.flags.is_empty(),
            "a removed address still has host details: {row:#?}"
        );
        ensure!(
            row.seen_on.len() == 1
                && row.seen_on[0].interface == "lab-srv"
                && Count::from(row.seen_on[0].rx) == rx
                && Count::from(row.seen_on[0].tx) == tx,
            "{row:#?}"
        );
    }
    ensure!(
        after.row(alias6)?.alias.as_deref() == Some("api-v6"),
        "the absent alias lost its name"
    );
    daemon.stop()
}

/// Where a VIP is in the move test, and what each host has counted for it.
struct Peer<'a> {
    name: &'a str,
    host: &'a lab::Host,
    pins: &'a BpfDir,
    config: &'a Path,
}

impl Peer<'_> {
    fn aliases(&self) -> Result<Aliases> {
        aliases::aliases(&self.host.ns, self.pins, self.config)
    }
}

/// Request payloads before and after the move, and the reply payload of
/// each phase: different, so counts credited to the wrong phase show.
const BEFORE_MOVE: (&[usize], usize) = (&[100, 200, 300], 50);
const AFTER_MOVE: (&[usize], usize) = (&[10, 20, 30, 40], 500);

/// Request/reply exchanges from the client to `vip` held by `server`.
fn exchanges(
    client: &UdpSocket,
    server: &lab::Host,
    vip: IpAddr,
    (requests, reply): (&[usize], usize),
) -> Result<(Count, Count)> {
    let socket = traffic::udp_socket(&server.ns, SocketAddr::new(vip, SERVER_PORT))?;
    let (mut rx, mut tx) = (Count::default(), Count::default());
    for &request in requests {
        traffic::exchange(client, &socket, request, reply)?;
        rx += datagram(vip, request);
        tx += datagram(vip, reply);
    }
    Ok((rx, tx))
}

/// Fails unless the only counted address in `a` is `vip`, with `rx`/`tx`.
fn only_vip_counted(peer: &Peer<'_>, a: &Aliases, vip: IpAddr, rx: Count, tx: Count) -> Result<()> {
    for row in &a.aliases {
        let (want_rx, want_tx) = if row.address == vip {
            (rx, tx)
        } else {
            (Count::default(), Count::default())
        };
        ensure!(
            row.rx() == want_rx && row.tx() == want_tx,
            "{}: {}: expected rx {want_rx}, tx {want_tx}; got rx {}, tx {}",
            peer.name,
            row.address,
            row.rx(),
            row.tx()
        );
    }
    Ok(())
}

#[test]
fn vip_moves_between_two_hosts() -> Result<()> {
    prereq::require()?;
    // IPv6 off: with ARP as the only other traffic (not IP, so in non_ip),
    // every address count is exactly the UDP this test sends.
    let lan = Lan::new(&["a", "b"], Ipv6::Off)?;
    let (client, a, b) = (&lan.client, &lan.servers[0], &lan.servers[1]);
    let (client_ip, a_ip, b_ip, vip) = (
        ip("10.72.0.1"),
        ip("10.72.0.2"),
        ip("10.72.0.3"),
        ip("10.72.0.100"),
    );
    client.add_addr(client_ip, 24)?;
    a.add_addr(a_ip, 24)?;
    b.add_addr(b_ip, 24)?;
    a.add_addr(vip, 24)?;
    // The peers know the client for good; the client resolves the VIP with
    // ARP, so a neighbour flush is what moves its traffic, as with
    // keepalived.
    for peer in [a, b] {
        peer.add_neighbour(client_ip, client.mac)?;
    }

    let dir = Scratch::new("vip")?;
    let vip_entry = "[[alias]]\nname = \"vip\"\naddress = \"10.72.0.100\"\nowner = \"lb-team\"\npurpose = \"keepalived VIP\"\n";
    let a_config = dir.write(
        "a.toml",
        &format!("[[alias]]\nname = \"node-a\"\naddress = \"10.72.0.2\"\ninterface = \"lab-srv\"\n\n{vip_entry}"),
    )?;
    let b_config = dir.write(
        "b.toml",
        &format!("[[alias]]\nname = \"node-b\"\naddress = \"10.72.0.3\"\ninterface = \"lab-srv\"\n\n{vip_entry}"),
    )?;
    let (a_pins, b_pins) = (BpfDir::new("a")?, BpfDir::new("b")?);
    let a_daemon = Daemon::start(&Config {
        config: Some(&a_config),
        ..Config::new(&a.ns, &a_pins, &a.ifname)
    })?;
    let b_daemon = Daemon::start(&Config {
        config: Some(&b_config),
        ..Config::new(&b.ns, &b_pins, &b.ifname)
    })?;
    let peer_a = Peer {
        name: "A",
        host: a,
        pins: &a_pins,
        config: &a_config,
    };
    let peer_b = Peer {
        name: "B",
        host: b,
        pins: &b_pins,
        config: &b_config,
    };

    let socket = traffic::udp_socket(&client.ns, SocketAddr::new(client_ip, CLIENT_PORT))?;
    let (rx_a, tx_a) = exchanges(&socket, a, vip, BEFORE_MOVE)?;
    let (seen_a, seen_b) = (peer_a.aliases()?, peer_b.aliases()?);
    ensure!(seen_a.row(vip)?.state == State::Documented, "{seen_a:#?}");
    ensure!(seen_b.row(vip)?.state == State::Absent, "{seen_b:#?}");
    only_vip_counted(&peer_a, &seen_a, vip, rx_a, tx_a)?;
    only_vip_counted(&peer_b, &seen_b, vip, Count::default(), Count::default())?;

    // The failover: A lets go, B takes over, the client forgets A's MAC.
    change_and_expect_log(
        &a_daemon,
        &a.ns,
        &["addr", "del", "10.72.0.100/24", "dev", &a.ifname],
        "address 10.72.0.100/24 removed from lab-srv: alias \"vip\" is absent",
    )?;
    change_and_expect_log(
        &b_daemon,
        &b.ns,
        &["addr", "add", "10.72.0.100/24", "dev", &b.ifname],
        "address 10.72.0.100/24 added on lab-srv: alias \"vip\" is documented",
    )?;
    client
        .ns
        .ip(&["neigh", "flush", "to", "10.72.0.100", "dev", &client.ifname])?;

    let (rx_b, tx_b) = exchanges(&socket, b, vip, AFTER_MOVE)?;
    let (seen_a, seen_b) = (peer_a.aliases()?, peer_b.aliases()?);
    println!("  A counted for the VIP: rx {rx_a}, tx {tx_a} (before the move)");
    println!("  B counted for the VIP: rx {rx_b}, tx {tx_b} (after the move)");
    let (vip_a, vip_b) = (seen_a.row(vip)?, seen_b.row(vip)?);
    ensure!(
        vip_a.state == State::Absent
            && vip_a.interface.is_none()
            && vip_a.alias.as_deref() == Some("vip"),
        "A after the move: {vip_a:#?}"
    );
    ensure!(
        vip_b.state == State::Documented
            && vip_b.interface.as_deref() == Some("lab-srv")
            && vip_b.alias.as_deref() == Some("vip")
            && vip_b.owner.as_deref() == Some("lb-team"),
        "B after the move: {vip_b:#?}"
    );
    // A keeps what it counted while it held the VIP; B counts from the move.
    only_vip_counted(&peer_a, &seen_a, vip, rx_a, tx_a)?;
    only_vip_counted(&peer_b, &seen_b, vip, rx_b, tx_b)?;

    // `check` agrees: B's file and host agree, A misses its VIP.
    let checked_a = aliases::check(Some(&a.ns), &a_config)?;
    let checked_b = aliases::check(Some(&b.ns), &b_config)?;
    ensure!(
        checked_a.code == 1
            && checked_a.stdout
                == "missing: alias \"vip\" (10.72.0.100) is not configured on this host\n",
        "check on A: {checked_a:?}"
    );
    ensure!(
        checked_b.code == 0 && checked_b.stdout == "the alias file and this host agree\n",
        "check on B: {checked_b:?}"
    );
    a_daemon.stop()?;
    b_daemon.stop()
}

/// What `aliases` should say about an address's place on the host.
struct Placed {
    address: &'static str,
    prefix_len: u8,
    label: Option<&'static str>,
    scope: &'static str,
    flags: &'static [&'static str],
    state: State,
}

/// The host-side fields of `row`, for comparing with a [`Placed`].
fn placed_fields(row: &aliases::Row) -> (Option<&str>, Option<u8>, Option<&str>, Vec<&str>, State) {
    (
        row.label.as_deref(),
        row.prefix_len,
        row.scope.as_deref(),
        row.flags.iter().map(String::as_str).collect(),
        row.state,
    )
}

#[test]
fn labels_and_ipv6_flags_are_shown() -> Result<()> {
    prereq::require()?;
    let veth = Veth::new(Ipv6::On)?;
    let srv = &veth.server;
    let dev = srv.ifname.as_str();
    // Before the daemon starts (seen in its start-up dump) ...
    for args in [
        &["addr", "add", "10.73.0.2/24", "dev", dev][..],
        &[
            "addr",
            "add",
            "10.73.0.5/24",
            "dev",
            dev,
            "label",
            "lab-srv:1",
        ],
        &["addr", "add", "fd00:73::5/64", "dev", dev, "nodad"],
        &[
            "addr",
            "add",
            "fd00:73::6/64",
            "dev",
            dev,
            "nodad",
            "preferred_lft",
            "0",
        ],
    ] {
        srv.ns.ip(args)?;
    }
    srv.ns.ip(&["link", "set", "lo", "up"])?;
    let dir = Scratch::new("labels")?;
    let config = dir.write(
        "aliases.toml",
        "[[alias]]\nname = \"legacy-web\"\naddress = \"10.73.0.5\"\ninterface = \"lab-srv\"\n",
    )?;
    let pins = BpfDir::new("srv")?;
    let listen = SocketAddr::from(([127, 0, 0, 1], prometheus::free_port(&srv.ns)?));
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        listen: Some(listen),
        ..Config::new(&srv.ns, &pins, dev)
    })?;
    // ... and while it runs (seen through rtnetlink events).
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &[
            "addr",
            "add",
            "10.73.0.6/24",
            "dev",
            dev,
            "label",
            "lab-srv:web",
        ],
        "address 10.73.0.6/24 added on lab-srv (label lab-srv:web): undocumented",
    )?;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        // Another subnet: a secondary must have its primary's scope.
        &["addr", "add", "10.73.1.8/24", "dev", dev, "scope", "link"],
        "address 10.73.1.8/24 added on lab-srv: undocumented",
    )?;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &[
            "addr",
            "add",
            "fd00:73::7/64",
            "dev",
            dev,
            "nodad",
            "noprefixroute",
        ],
        "address fd00:73::7/64 added on lab-srv: undocumented",
    )?;
    // A change to an existing address is no new address (no log line), but
    // the daemon's table must follow it.
    srv.ns.ip(&[
        "addr",
        "change",
        "fd00:73::5/64",
        "dev",
        dev,
        // `change` sets the flags anew: without this, nodad goes.
        "nodad",
        "preferred_lft",
        "0",
    ])?;

    // The flags as `ip addr` names them, in the daemon's order; an IPv4
    // address's label is its interface's name unless set, an IPv6 address
    // has none.
    let expected = [
        Placed {
            address: "10.73.0.2",
            prefix_len: 24,
            label: Some("lab-srv"),
            scope: "global",
            flags: &["permanent"],
            state: State::Undocumented,
        },
        Placed {
            address: "10.73.0.5",
            prefix_len: 24,
            label: Some("lab-srv:1"),
            scope: "global",
            flags: &["secondary", "permanent"],
            state: State::Documented,
        },
        Placed {
            address: "10.73.0.6",
            prefix_len: 24,
            label: Some("lab-srv:web"),
            scope: "global",
            flags: &["secondary", "permanent"],
            state: State::Undocumented,
        },
        Placed {
            address: "10.73.1.8",
            prefix_len: 24,
            label: Some("lab-srv"),
            scope: "link",
            flags: &["permanent"],
            state: State::Undocumented,
        },
        Placed {
            address: "fd00:73::5",
            prefix_len: 64,
            label: None,
            scope: "global",
            flags: &["nodad", "deprecated", "permanent"],
            state: State::Undocumented,
        },
        Placed {
            address: "fd00:73::6",
            prefix_len: 64,
            label: None,
            scope: "global",
            flags: &["nodad", "deprecated", "permanent"],
            state: State::Undocumented,
        },
        Placed {
            address: "fd00:73::7",
            prefix_len: 64,
            label: None,
            scope: "global",
            flags: &["nodad", "permanent", "noprefixroute"],
            state: State::Undocumented,
        },
    ];
    println!(
        "  ip addr show:\n{}",
        srv.ns.ip(&["addr", "show", "dev", dev])?
    );
    // The one-shot dump (`aliases`) and the daemon's live table
    // (`/api/v1/aliases`) must both say exactly this.
    let dumped = aliases::aliases(&srv.ns, &pins, &config)?;
    let live = poll(
        "the daemon's table following `ip addr change`",
        PATIENCE,
        || Aliases::parse(http::get(&srv.ns, listen, "/api/v1/aliases")?.text()?),
        |a| {
            a.row(ip("fd00:73::5"))
                .is_ok_and(|r| r.flags.iter().any(|f| f == "deprecated"))
        },
    )?;
    for (view, seen) in [("aliases --json", &dumped), ("/api/v1/aliases", &live)] {
        for p in &expected {
            let row = seen.row(ip(p.address))?;
            let want = (
                p.label,
                Some(p.prefix_len),
                Some(p.scope),
                p.flags.to_vec(),
                p.state,
            );
            ensure!(
                placed_fields(row) == want && row.interface.as_deref() == Some("lab-srv"),
                "{view}: {}: expected {want:?}, got {row:#?}",
                p.address
            );
        }
    }
    println!("  labels and flags agree in `aliases --json` and /api/v1/aliases");
    daemon.stop()
}

/// Extra addresses on the server's loopback for the `ready` tests: they
/// make the daemon's first rtnetlink dump take tens of milliseconds, so
/// that if `ready` came before that dump was in, the tests' first action
/// would land inside the gap nearly every time rather than now and then.
const EARLY_ADDRESSES: usize = 10000;

/// A daemon on a link with one documented address, 10.79.0.2, serving
/// HTTP on the server's loopback; returned as soon as it logs `ready`.
struct Early {
    veth: Veth,
    config: PathBuf,
    _dir: Scratch,
    pins: BpfDir,
    listen: SocketAddr,
}

impl Early {
    fn new() -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        veth.server.add_addr(ip("10.79.0.2"), 24)?;
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        // Not "ready": the lab takes that word anywhere in a log line, and
        // the first line names the alias file's directory.
        let dir = Scratch::new("early")?;
        let config = dir.write(
            "aliases.toml",
            "[[alias]]\nname = \"primary\"\naddress = \"10.79.0.2\"\n",
        )?;
        // Added in one `ip -batch` run: one `ip` per address would take
        // minutes.
        let batch: String = (0..EARLY_ADDRESSES)
            .map(|i| format!("addr add 10.80.{}.{}/32 dev lo\n", i / 250, i % 250 + 1))
            .collect();
        let batch = dir.write("batch", &batch)?;
        veth.server.ns.ip(&["-batch", &batch.to_string_lossy()])?;
        let pins = BpfDir::new("srv")?;
        let listen = SocketAddr::from(([127, 0, 0, 1], prometheus::free_port(&veth.server.ns)?));
        Ok(Self {
            veth,
            config,
            _dir: dir,
            pins,
            listen,
        })
    }

    fn start(&self) -> Result<Daemon> {
        Daemon::start(&Config {
            config: Some(&self.config),
            listen: Some(self.listen),
            ..Config::new(&self.veth.server.ns, &self.pins, &self.veth.server.ifname)
        })
    }
}

/// `ready` means attached and serving; an address added right after it must
/// be logged like any later one (the audit trail of aliases coming and
/// going).
#[test]
fn address_added_right_after_ready_is_logged() -> Result<()> {
    prereq::require()?;
    let early = Early::new()?;
    let daemon = early.start()?;
    let srv = &early.veth.server;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &["addr", "add", "10.79.0.9/24", "dev", &srv.ifname],
        "address 10.79.0.9/24 added on lab-srv: undocumented",
    )?;
    daemon.stop()
}

/// Right after `ready`, `/api/v1/aliases` must know the addresses that were
/// on the host before the daemon started.
#[test]
fn api_right_after_ready_knows_the_host() -> Result<()> {
    prereq::require()?;
    let early = Early::new()?;
    let daemon = early.start()?;
    let srv = &early.veth.server;
    let served = Aliases::parse(http::get(&srv.ns, early.listen, "/api/v1/aliases")?.text()?)?;
    let row = served.row(ip("10.79.0.2"))?;
    ensure!(
        row.state == State::Documented && row.interface.as_deref() == Some("lab-srv"),
        "/api/v1/aliases right after `ready` does not know the host's addresses: {row:#?}"
    );
    daemon.stop()
}

/// Writes `text` as an alias file and runs `aliasstat check` on it; the
/// file must be rejected with exit status 2 and exactly
/// `aliasstat: FILE:LINE:COLUMN: MESSAGE` on stderr.
fn rejected(text: &str, line: usize, column: usize, message: &str) -> Result<()> {
    let dir = Scratch::new("bad")?;
    let file = dir.write("aliases.toml", text)?;
    // Checked here, outside any lab namespace: the file is validated before
    // the host is looked at, so these need neither root nor a namespace.
    let checked = aliases::check(None, &file)?;
    let expected = Checked {
        code: 2,
        stdout: String::new(),
        stderr: format!("aliasstat: {}:{line}:{column}: {message}\n", file.display()),
    };
    ensure!(
        checked == expected,
        "for the file:\n{text}\nexpected {expected:#?}\ngot {checked:#?}"
    );
    println!("  {}", checked.stderr.trim_end());
    Ok(())
}

#[test]
fn config_error_duplicate_name() -> Result<()> {
    rejected(
        "# the web tier\n[[alias]]\nname = \"web\"\naddress = \"192.0.2.10\"\n\n[[alias]]\nname    = \"web\"\naddress = \"192.0.2.11\"\n",
        7,
        11,
        "the alias name \"web\" is already used on line 3; alias names must be unique",
    )
}

#[test]
fn config_error_duplicate_address() -> Result<()> {
    // The same IPv6 address spelt two ways is still the same address.
    rejected(
        "[[alias]]\nname = \"dns-a\"\naddress = \"2001:db8::53\"\n\n[[alias]]\nname = \"dns-b\"\n  address = \"2001:0db8:0:0::53\"\n",
        7,
        13,
        "address 2001:db8::53 is already documented by alias \"dns-a\" on line 2; document each address once",
    )
}

#[test]
fn config_error_invalid_address() -> Result<()> {
    rejected(
        "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.300\"\n",
        3,
        11,
        "\"192.0.2.300\" is not an IP address; write one IPv4 or IPv6 address without a prefix length, such as \"192.168.1.100\" or \"2001:db8::1\"",
    )
}

#[test]
fn config_error_unknown_key() -> Result<()> {
    rejected(
        "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.10\"\n  purpse = \"typo\"\n",
        4,
        3,
        "unknown field `purpse`, expected one of `name`, `address`, `owner`, `purpose`, `interface`; see the example in the README",
    )
}

#[test]
fn config_error_empty_name() -> Result<()> {
    rejected(
        "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.10\"\n\n[[alias]]\nname = \"\"\naddress = \"192.0.2.11\"\n",
        6,
        8,
        "the alias name is empty; give every [[alias]] a name such as \"shop-tls\"",
    )
}

#[test]
fn check_exits_0_1_and_2() -> Result<()> {
    prereq::require()?;
    let veth = Veth::new(Ipv6::Off)?;
    let srv = &veth.server;
    srv.add_addr(ip("10.77.0.2"), 24)?;
    srv.add_addr(ip("10.77.0.3"), 24)?;
    srv.add_labelled_addr(ip("10.77.0.4"), 24, "4")?;
    let ns = Some(&srv.ns);
    let dir = Scratch::new("check")?;

    let agree = dir.write(
        "agree.toml",
        "[[alias]]\nname = \"primary\"\naddress = \"10.77.0.2\"\ninterface = \"lab-srv\"\n\
         [[alias]]\nname = \"api\"\naddress = \"10.77.0.3\"\n\
         [[alias]]\nname = \"web\"\naddress = \"10.77.0.4\"\ninterface = \"lab-srv\"\n",
    )?;
    let checked = aliases::check(ns, &agree)?;
    ensure!(
        checked
            == Checked {
                code: 0,
                stdout: "the alias file and this host agree\n".into(),
                stderr: String::new(),
            },
        "agreeing file: {checked:#?}"
    );

    // One of each kind of drift.
    let drift = dir.write(
        "drift.toml",
        "[[alias]]\nname = \"primary\"\naddress = \"10.77.0.2\"\ninterface = \"eth9\"\n\
         [[alias]]\nname = \"gone\"\naddress = \"10.77.0.50\"\n",
    )?;
    let checked = aliases::check(ns, &drift)?;
    let report = "undocumented: 10.77.0.3/24 on lab-srv\n\
                  undocumented: 10.77.0.4/24 on lab-srv (label lab-srv:4)\n\
                  missing: alias \"gone\" (10.77.0.50) is not configured on this host\n\
                  misplaced: alias \"primary\" (10.77.0.2) is expected on eth9 but is on lab-srv\n";
    ensure!(
        checked
            == Checked {
                code: 1,
                stdout: report.into(),
                stderr: String::new(),
            },
        "drifting file: {checked:#?}"
    );

    // An empty file is valid: it documents nothing, so everything drifts.
    let empty = dir.write("empty.toml", "")?;
    let checked = aliases::check(ns, &empty)?;
    ensure!(
        checked.code == 1 && checked.stdout.lines().count() == 3,
        "empty file: {checked:#?}"
    );

    let invalid = dir.write("invalid.toml", "[[alias]\nname = \"a\"\n")?;
    let checked = aliases::check(ns, &invalid)?;
    ensure!(
        checked
            == Checked {
                code: 2,
                stdout: String::new(),
                stderr: format!(
                    "aliasstat: {}:1:9: unclosed array table, expected `]`; see the example in the README\n",
                    invalid.display()
                ),
            },
        "invalid file: {checked:#?}"
    );

    // A file that is not there (and is not the default path) is an error,
    // not an empty inventory.
    let missing = dir.path().join("missing.toml");
    let checked = aliases::check(ns, &missing)?;
    ensure!(
        checked
            == Checked {
                code: 2,
                stdout: String::new(),
                stderr: format!(
                    "aliasstat: failed to read the alias inventory `{}`\n",
                    missing.display()
                ),
            },
        "missing file: {checked:#?}"
    );
    Ok(())
}

/// The value of the one sample of `name` without labels in `/metrics`.
fn gauge(ns: &Netns, listen: SocketAddr, name: &str) -> Result<f64> {
    let text = http::get(ns, listen, "/metrics")?.text()?.to_owned();
    let samples = parse_text(&text)?;
    let found: Vec<f64> = samples
        .iter()
        .filter(|m| m.name == name && m.labels.is_empty())
        .map(|m| m.value)
        .collect();
    match found[..] {
        [value] => Ok(value),
        _ => bail!("expected one {name} in /metrics, found {found:?}:\n{text}"),
    }
}

#[test]
fn sighup_reloads_valid_files_and_keeps_the_last_good_one() -> Result<()> {
    prereq::require()?;
    let veth = Veth::new(Ipv6::Off)?;
    let (client, primary, alias) = (ip("10.78.0.1"), ip("10.78.0.2"), ip("10.78.0.5"));
    veth.client.add_addr(client, 24)?;
    veth.server.add_addr(primary, 24)?;
    veth.server.add_addr(alias, 24)?;
    veth.know_each_other(&[client], &[primary, alias])?;
    let srv = &veth.server;
    srv.ns.ip(&["link", "set", "lo", "up"])?;

    let dir = Scratch::new("hup")?;
    let config = dir.write(
        "aliases.toml",
        "[[alias]]\nname = \"blue\"\naddress = \"10.78.0.5\"\nowner = \"team-blue\"\n",
    )?;
    let pins = BpfDir::new("srv")?;
    let listen = SocketAddr::from(([127, 0, 0, 1], prometheus::free_port(&srv.ns)?));
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        listen: Some(listen),
        ..Config::new(&srv.ns, &pins, &srv.ifname)
    })?;
    // The daemon's own view: `aliases --json` would re-read the file.
    let api = || Aliases::parse(http::get(&srv.ns, listen, "/api/v1/aliases")?.text()?);

    let from = traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, CLIENT_PORT))?;
    let to = traffic::udp_socket(&srv.ns, SocketAddr::new(alias, SERVER_PORT))?;
    let (mut rx, mut tx) = (Count::default(), Count::default());
    for request in [100, 250, 1000] {
        traffic::exchange(&from, &to, request, 64)?;
        rx += datagram(alias, request);
        tx += datagram(alias, 64);
    }
    let counted = |a: &Aliases, name: &str, rx: Count, tx: Count| -> Result<()> {
        let row = a.row(alias)?;
        ensure!(
            row.alias.as_deref() == Some(name)
                && row.state == State::Documented
                && row.rx() == rx
                && row.tx() == tx,
            "expected alias {name:?} with rx {rx}, tx {tx}; got {row:#?}"
        );
        Ok(())
    };
    counted(&api()?, "blue", rx, tx)?;
    ensure!(gauge(&srv.ns, listen, "aliasstat_config_last_reload_success")? == 1.0);

    // A valid new file: the name changes, the counts do not.
    dir.write(
        "aliases.toml",
        "[[alias]]\nname = \"green\"\naddress = \"10.78.0.5\"\nowner = \"team-green\"\n",
    )?;
    let since = daemon.log().len();
    daemon.hangup()?;
    daemon.wait_for_line(
        since,
        &format!(
            "SIGHUP: reloaded 1 documented aliases from {}",
            config.display()
        ),
        PATIENCE,
    )?;
    // The log line comes just before the new inventory is published.
    let reloaded = poll("the new name served", PATIENCE, api, |a| {
        a.row(alias)
            .is_ok_and(|r| r.alias.as_deref() == Some("green"))
    })?;
    counted(&reloaded, "green", rx, tx)?;
    ensure!(reloaded.row(alias)?.owner.as_deref() == Some("team-green"));
    println!("  after a valid SIGHUP: \"green\", rx {rx}, tx {tx}");

    // An invalid file: logged with its place, the previous inventory stays.
    dir.write(
        "aliases.toml",
        "[[alias]]\nname = \"red\"\naddress = \"10.78.0.5\"\n[[alias]]\nname = \"red-too\"\naddress = \"10.78.0.05\"\n",
    )?;
    let since = daemon.log().len();
    daemon.hangup()?;
    let line = daemon.wait_for_line(
        since,
        &format!(
            "SIGHUP: keeping the previous alias inventory: {}:6:11: \"10.78.0.05\" is not an IP address",
            config.display()
        ),
        PATIENCE,
    )?;
    println!("  {}", line.trim());
    poll(
        "aliasstat_config_last_reload_success after a failed reload",
        PATIENCE,
        || gauge(&srv.ns, listen, "aliasstat_config_last_reload_success"),
        |&v| v == 0.0,
    )?;
    counted(&api()?, "green", rx, tx)?;

    // Counting went on throughout.
    traffic::exchange(&from, &to, 7, 8)?;
    rx += datagram(alias, 7);
    tx += datagram(alias, 8);
    counted(&api()?, "green", rx, tx)?;
    println!("  after a failed SIGHUP and one more exchange: \"green\", rx {rx}, tx {tx}");
    daemon.stop()
}
