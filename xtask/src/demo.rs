//! `cargo xtask demo`: aliasstat counting live traffic in a throwaway
//! network-namespace lab.
//!
//! A "server" namespace holds a primary IPv4 address, a secondary one, a
//! labelled alias and an IPv6 address on one veth, and an alias file that
//! documents three of them plus a VIP the server does not hold; a "client"
//! namespace on the other end sends UDP to each at its own rate, bursts of
//! TCP, and ARP and LLDP frames. `aliasstat run` counts on the server's veth
//! while the demo shows `aliasstat dump` every second, then the inventory
//! (`aliasstat aliases`) and a few lines of `/metrics`, and on a terminal
//! ends in `aliasstat top` over the same live traffic. The live page is
//! forwarded to the host's loopback for a browser while the demo runs. Everything the lab
//! made goes away on exit, Ctrl-C included.

use std::{
    io::{IsTerminal as _, Write as _},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use lab::{
    BpfDir, Daemon, Veth,
    daemon::{self, Config},
    forward::Forward,
    frames, http, interrupt,
    link::Ipv6,
    scratch::Scratch,
    traffic::{self, PacketSocket},
};

use crate::setup;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How long to send traffic, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
}

/// UDP is sent in ticks of this length; each alias gets a datagram every
/// `period` ticks.
const TICK: Duration = Duration::from_millis(100);
const TICKS_PER_SECOND: u32 = 10;
const UDP_PORT: u16 = 5300;
const TCP_PORT: u16 = 5201;
/// Every UDP datagram is answered with this many bytes, so each alias
/// counts egress too.
const REPLY: usize = 64;
/// Sent to the primary address once a second.
const TCP_BURST: u64 = 2 << 20;

/// A server address and the UDP it receives: one `payload`-byte datagram
/// every `period` ticks, each answered with [`REPLY`] bytes, so each alias
/// grows at its own visible rate.
struct Alias {
    addr: &'static str,
    prefix_len: u8,
    /// `Some(suffix)`: configured with the label `lab-srv:<suffix>`.
    label: Option<&'static str>,
    period: u32,
    payload: usize,
}

const ALIASES: [Alias; 4] = [
    Alias {
        addr: "10.80.0.2",
        prefix_len: 24,
        label: None,
        period: 1,
        payload: 200,
    },
    Alias {
        addr: "10.80.0.3",
        prefix_len: 24,
        label: None,
        period: 2,
        payload: 500,
    },
    Alias {
        addr: "10.80.0.4",
        prefix_len: 24,
        label: Some("web"),
        period: 4,
        payload: 1000,
    },
    Alias {
        addr: "fd00:80::2",
        prefix_len: 64,
        label: None,
        period: 10,
        payload: 100,
    },
];
const CLIENT_V4: &str = "10.80.0.1";
const CLIENT_V6: &str = "fd00:80::1";

/// Documents three of the server's four addresses (10.80.0.3 stays
/// undocumented) and a standby VIP the server does not hold (absent).
const INVENTORY: &str = r#"[[alias]]
name = "shop-tls"
address = "10.80.0.2"
owner = "web-team"
purpose = "IP-based TLS vhost for shop.example"

[[alias]]
name = "api"
address = "10.80.0.4"
owner = "api-team"
purpose = "public API"
interface = "lab-srv"

[[alias]]
name = "dns-v6"
address = "fd00:80::2"
owner = "infra"
purpose = "resolver"

[[alias]]
name = "vip-standby"
address = "10.80.0.50"
owner = "ha-team"
purpose = "keepalived VIP, held by the peer"
"#;

/// Where the daemon serves HTTP inside the server namespace.
const LISTEN: &str = "127.0.0.1:9864";
/// Where the host's browser reaches it (another free port if taken).
const FORWARD: &str = "127.0.0.1:9864";

pub fn run(args: DemoArgs) -> Result<()> {
    setup::require_root(
        "the demo creates network namespaces and loads BPF programs",
        "demo",
        "",
    )?;
    interrupt::catch()?;
    lab::remove_stale()?;
    match demo(&args) {
        // Ctrl-C also reaches the daemon and any `dump` in flight, which
        // then fail; that is the user leaving, not an error.
        Err(_) if interrupt::interrupted() => {
            println!("interrupted: lab removed");
            Ok(())
        }
        other => other,
    }
}

fn demo(args: &DemoArgs) -> Result<()> {
    let veth = Veth::new(Ipv6::On)?;
    let client_v4: IpAddr = CLIENT_V4.parse()?;
    let client_v6: IpAddr = CLIENT_V6.parse()?;
    veth.client.add_addr(client_v4, 24)?;
    veth.client.add_addr(client_v6, 64)?;
    let mut server_v6 = Vec::new();
    for alias in &ALIASES {
        let addr: IpAddr = alias.addr.parse()?;
        match alias.label {
            Some(suffix) => veth
                .server
                .add_labelled_addr(addr, alias.prefix_len, suffix)?,
            None => veth.server.add_addr(addr, alias.prefix_len)?,
        }
        if addr.is_ipv6() {
            server_v6.push(addr);
        }
    }
    // IPv6 neighbours are static so the addresses answer at once; IPv4 is
    // left to ARP, which then shows up in `non_ip` like on a real network.
    veth.know_each_other(&[client_v6], &server_v6)?;

    // The daemon serves HTTP on the server's loopback.
    veth.server.ns.ip(&["link", "set", "lo", "up"])?;
    let pins = BpfDir::new("demo")?;
    let scratch = Scratch::new("demo")?;
    let inventory = scratch.write("aliases.toml", INVENTORY)?;
    let listen: SocketAddr = LISTEN.parse()?;
    let mut config = Config::new(&veth.server.ns, &pins, &veth.server.ifname);
    config.config = Some(&inventory);
    config.listen = Some(listen);
    let daemon = Daemon::start(&config)?;
    let forward = Forward::start(FORWARD.parse()?, &veth.server.ns, listen)?;
    let header = format!(
        "server netns {}:\n{}aliasstat counts on {}, maps pinned under {}; \
         client netns {} sends for {} s (Ctrl-C stops)\n\
         live page: http://{}/ (forwarded from the host while the demo runs)\n",
        veth.server.ns.name(),
        veth.server
            .ns
            .ip(&["-brief", "addr", "show", "dev", &veth.server.ifname])?,
        veth.server.ifname,
        pins.path().display(),
        veth.client.ns.name(),
        args.seconds,
        forward.local,
    );
    let client = Client::new(&veth)?;
    send_and_show(&client, &veth, &pins, &header, args.seconds)?;
    if !interrupt::interrupted() {
        show_inventory(&veth, &pins, &inventory, listen)?;
    }
    if !interrupt::interrupted() && std::io::stdout().is_terminal() {
        top_over_live_traffic(&client, &veth, listen)?;
    }
    // On Ctrl-C the daemon got SIGINT too and has stopped by itself.
    daemon.stop()?;
    if interrupt::interrupted() {
        println!("interrupted: removing the lab");
    } else {
        println!("done: removing the lab");
    }
    Ok(())
}

/// `aliasstat aliases`, then the metrics URL and the lines of one alias.
fn show_inventory(
    veth: &Veth,
    pins: &BpfDir,
    inventory: &std::path::Path,
    listen: SocketAddr,
) -> Result<()> {
    let table = lab::cmd::run(
        veth.server
            .ns
            .exec(daemon::binary()?)
            .arg("aliases")
            .arg("--bpffs")
            .arg(pins.path())
            .arg("--config")
            .arg(inventory),
    )?;
    println!(
        "aliasstat aliases (inventory {}):\n{table}",
        inventory.display()
    );
    let metrics = http::get(&veth.server.ns, listen, "/metrics")?;
    println!(
        "metrics: http://{listen}/metrics inside netns {} (`ip netns exec {} curl -s http://{listen}/metrics`); the lines of alias \"shop-tls\":",
        veth.server.ns.name(),
        veth.server.ns.name()
    );
    for line in metrics.text()?.lines().filter(|l| l.contains("shop-tls")) {
        println!("  {line}");
    }
    println!();
    Ok(())
}

/// Runs `aliasstat top` in the server namespace, on this terminal, while
/// the client keeps sending; returns when the user quits it.
fn top_over_live_traffic(client: &Client, veth: &Veth, listen: SocketAddr) -> Result<()> {
    println!("starting aliasstat top over the live traffic; press q to quit it");
    thread::sleep(Duration::from_secs(2));
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let sender = s.spawn(|| -> Result<()> {
            for tick in (0..TICKS_PER_SECOND).cycle() {
                if stop.load(Ordering::Relaxed) || interrupt::interrupted() {
                    break;
                }
                let started = Instant::now();
                client.udp_tick(tick)?;
                if tick == 0 {
                    client.tcp_burst(veth)?;
                    client.frames()?;
                }
                thread::sleep(TICK.saturating_sub(started.elapsed()));
            }
            Ok(())
        });
        let top = veth
            .server
            .ns
            .exec(daemon::binary()?)
            .args(["top", "--url", &format!("http://{listen}")])
            .status()
            .context("failed to run aliasstat top");
        stop.store(true, Ordering::Relaxed);
        let sent = sender.join().expect("the sender thread does not panic");
        top?;
        sent
    })
}

/// Sends traffic for `seconds`, printing `aliasstat dump` after each;
/// returns early on Ctrl-C.
fn send_and_show(
    client: &Client,
    veth: &Veth,
    pins: &BpfDir,
    header: &str,
    seconds: u32,
) -> Result<()> {
    // On a terminal the table updates in place; in a log, each one follows
    // the last.
    let redraw = std::io::stdout().is_terminal();
    if !redraw {
        println!("{header}");
    }
    for second in 1..=seconds {
        let started = Instant::now();
        for tick in 0..TICKS_PER_SECOND {
            if interrupt::interrupted() {
                return Ok(());
            }
            client.udp_tick(tick)?;
            thread::sleep((started + TICK * (tick + 1)).saturating_duration_since(Instant::now()));
        }
        client.tcp_burst(veth)?;
        client.frames()?;
        if interrupt::interrupted() {
            return Ok(());
        }
        let table = daemon::dump_table(&veth.server.ns, pins)?;
        if redraw {
            // Clear the screen and home the cursor.
            println!("\x1b[2J\x1b[H{header}");
        }
        println!("aliasstat dump after {second} s:");
        println!("{table}");
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// The client's sockets, made once and reused every tick.
struct Client {
    udp_v4: std::net::UdpSocket,
    udp_v6: std::net::UdpSocket,
    /// One receiving socket per server alias, in [`ALIASES`] order.
    sinks: Vec<std::net::UdpSocket>,
    frames: PacketSocket,
    client_mac: lab::Mac,
    client_v4: Ipv4Addr,
    tcp_to: SocketAddr,
}

impl Client {
    fn new(veth: &Veth) -> Result<Self> {
        let client_v4: Ipv4Addr = CLIENT_V4.parse()?;
        let client_v6: IpAddr = CLIENT_V6.parse()?;
        let sinks = ALIASES
            .iter()
            .map(|a| {
                traffic::udp_socket(&veth.server.ns, SocketAddr::new(a.addr.parse()?, UDP_PORT))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            udp_v4: traffic::udp_socket(&veth.client.ns, SocketAddr::new(client_v4.into(), 0))?,
            udp_v6: traffic::udp_socket(&veth.client.ns, SocketAddr::new(client_v6, 0))?,
            sinks,
            frames: PacketSocket::sender(&veth.client)?,
            client_mac: veth.client.mac,
            client_v4,
            tcp_to: SocketAddr::new(ALIASES[0].addr.parse()?, TCP_PORT),
        })
    }

    fn udp_tick(&self, tick: u32) -> Result<()> {
        for (alias, sink) in ALIASES.iter().zip(&self.sinks) {
            if !tick.is_multiple_of(alias.period) {
                continue;
            }
            let from = if sink.local_addr()?.is_ipv4() {
                &self.udp_v4
            } else {
                &self.udp_v6
            };
            traffic::exchange(from, sink, alias.payload, REPLY)?;
        }
        Ok(())
    }

    fn tcp_burst(&self, veth: &Veth) -> Result<()> {
        traffic::tcp_bulk(&veth.client.ns, &veth.server.ns, self.tcp_to, TCP_BURST)?;
        Ok(())
    }

    /// Two ARP requests for an address nobody has, and one LLDP frame.
    fn frames(&self) -> Result<()> {
        let arp = frames::arp_request(
            self.client_mac,
            self.client_v4,
            Ipv4Addr::new(10, 80, 0, 99),
        );
        self.frames.send(&arp)?;
        self.frames.send(&arp)?;
        self.frames.send(&frames::lldp(self.client_mac, 128))
    }
}
