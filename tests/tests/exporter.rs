//! The Prometheus exporter (issue 4), scraped by a real Prometheus server
//! and checked with `promtool`: exact per-address counts in both
//! directions and both families, every metric family with its labels, the
//! HTTP surface, concurrent scrapes, and a SIGHUP that renames series.
//!
//! The daemon and Prometheus both run inside the server's namespace and
//! talk over its loopback, which the daemon does not count, so scrapes add
//! nothing to the counts under test. Needs root: run with `cargo xtask
//! test -- <filter>`, or `cargo test --release -p lab --test exporter`
//! with `ALIASSTAT_BIN` set.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Barrier},
    thread,
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, bail, ensure};
use lab::{
    BpfDir, Count, Daemon, Veth,
    daemon::Config,
    frames::{self, ETH_P_LLDP, UDP_HLEN, ip_header_len},
    http,
    link::Ipv6,
    prereq,
    prometheus::{self, Metric, Prometheus, Sample, parse_text, unix_seconds},
    scratch::Scratch,
    traffic::{self, PacketSocket},
};

const CLIENT_PORT: u16 = 40000;
const SERVER_PORT: u16 = 5300;
const JOB: &str = "aliasstat";
const IFACE: &str = "lab-srv";
const PATIENCE: Duration = Duration::from_secs(10);

const CLIENT4: &str = "10.74.0.1";
const CLIENT6: &str = "fd00:74::1";
/// The server's primaries: on the host, never sent to.
const IDLE: [&str; 2] = ["10.74.0.2", "fd00:74::2"];
/// A documented alias the host does not hold.
const STANDBY: &str = "10.74.0.100";

/// Per alias: its address, its name in the first alias file (`None`:
/// undocumented), its name after the SIGHUP, the request payloads the
/// client sends it and the reply payload it answers each with. Counts and
/// sizes differ between addresses and directions, so counts credited to
/// the wrong series cannot add up.
struct Planned {
    address: &'static str,
    alias: Option<&'static str>,
    alias_after_reload: &'static str,
    requests: &'static [usize],
    reply: usize,
}

const PLAN: [Planned; 4] = [
    Planned {
        address: "10.74.0.3",
        alias: Some("web-v4"),
        alias_after_reload: "web-v4",
        requests: &[0, 64, 1000, 1400],
        reply: 10,
    },
    Planned {
        address: "10.74.0.4",
        alias: None,
        alias_after_reload: "db-v4",
        requests: &[200, 200, 200],
        reply: 300,
    },
    Planned {
        address: "fd00:74::3",
        alias: Some("web-v6"),
        alias_after_reload: "web-v6",
        requests: &[1, 2, 3, 4, 5],
        reply: 1200,
    },
    Planned {
        address: "fd00:74::4",
        alias: None,
        alias_after_reload: "db-v6",
        requests: &[700, 900],
        reply: 1,
    },
];

/// LLDP-ethertype frames sent to the server: its only non-IP traffic.
const LLDP_LENGTHS: [usize; 3] = [60, 64, 333];

const ALIASES_BEFORE: &str = r#"[[alias]]
name = "web-v4"
address = "10.74.0.3"
owner = "web-team"
purpose = "TLS vhost for shop.example"
interface = "lab-srv"

[[alias]]
name = "web-v6"
address = "fd00:74::3"
owner = "web-team"

[[alias]]
name = "standby"
address = "10.74.0.100"
owner = "lb-team"
purpose = "keepalived VIP held by the peer"
interface = "lab-srv"
"#;

fn aliases_after_reload() -> String {
    format!(
        "{ALIASES_BEFORE}\n[[alias]]\nname = \"db-v4\"\naddress = \"10.74.0.4\"\nowner = \"db-team\"\n\n\
         [[alias]]\nname = \"db-v6\"\naddress = \"fd00:74::4\"\nowner = \"db-team\"\n"
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a valid address literal")
}

/// One UDP datagram with `payload` bytes, as counted at the IP layer.
fn datagram(addr: IpAddr, payload: usize) -> Count {
    Count::one((ip_header_len(addr) + UDP_HLEN + payload) as u64)
}

/// Per address: what the server received and sent.
type Expected = BTreeMap<IpAddr, (Count, Count)>;

/// A daemon on the server end of a veth, documented by a temp alias file,
/// serving HTTP on the server namespace's loopback.
struct ExporterLab {
    daemon: Daemon,
    /// Bounds for the daemon's start time, for the timestamps it exports.
    started: (SystemTime, SystemTime),
    listen: SocketAddr,
    config: std::path::PathBuf,
    _pins: BpfDir,
    dir: Scratch,
    veth: Veth,
}

impl ExporterLab {
    fn new() -> Result<Self> {
        prereq::require()?;
        let veth = Veth::new(Ipv6::On)?;
        veth.client.add_addr(ip(CLIENT4), 24)?;
        veth.client.add_addr(ip(CLIENT6), 64)?;
        veth.server.add_addr(ip(IDLE[0]), 24)?;
        veth.server.add_addr(ip(IDLE[1]), 64)?;
        for p in &PLAN {
            let address = ip(p.address);
            if p.address == "10.74.0.3" {
                veth.server.add_labelled_addr(address, 24, "1")?;
            } else {
                veth.server
                    .add_addr(address, if address.is_ipv4() { 24 } else { 64 })?;
            }
        }
        // Static neighbours: no ARP, and no neighbour discovery that could
        // use the aliases as a source.
        let server: Vec<IpAddr> = IDLE
            .iter()
            .chain(PLAN.iter().map(|p| &p.address))
            .map(|a| ip(a))
            .collect();
        veth.know_each_other(&[ip(CLIENT4), ip(CLIENT6)], &server)?;
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;

        let dir = Scratch::new("exp")?;
        let config = dir.write("aliases.toml", ALIASES_BEFORE)?;
        let pins = BpfDir::new("srv")?;
        let listen = SocketAddr::from(([127, 0, 0, 1], prometheus::free_port(&veth.server.ns)?));
        let before = SystemTime::now();
        let daemon = Daemon::start(&Config {
            config: Some(&config),
            listen: Some(listen),
            ..Config::new(&veth.server.ns, &pins, &veth.server.ifname)
        })?;
        let after = SystemTime::now();
        Ok(Self {
            daemon,
            started: (before, after),
            listen,
            config,
            _pins: pins,
            dir,
            veth,
        })
    }

    fn ns(&self) -> &lab::Netns {
        &self.veth.server.ns
    }

    /// Sends `PLAN`, each request answered before the next goes out.
    fn send_plan(&self) -> Result<Expected> {
        let mut expected = Expected::new();
        for (family, client) in [(true, CLIENT4), (false, CLIENT6)] {
            let client = traffic::udp_socket(
                &self.veth.client.ns,
                SocketAddr::new(ip(client), CLIENT_PORT),
            )?;
            for p in PLAN.iter().filter(|p| ip(p.address).is_ipv4() == family) {
                let address = ip(p.address);
                let server = traffic::udp_socket(
                    &self.veth.server.ns,
                    SocketAddr::new(address, SERVER_PORT),
                )?;
                let (rx, tx) = expected.entry(address).or_default();
                for &request in p.requests {
                    traffic::exchange(&client, &server, request, p.reply)?;
                    *rx += datagram(address, request);
                    *tx += datagram(address, p.reply);
                }
            }
        }
        Ok(expected)
    }

    /// Sends [`LLDP_LENGTHS`] to the server; returns what its ingress must
    /// count as non-IP.
    fn send_non_ip(&self) -> Result<Count> {
        let out = PacketSocket::sender(&self.veth.client)?;
        let seen = PacketSocket::receiver(&self.veth.server, ETH_P_LLDP)?;
        let mut sent = Count::default();
        for len in LLDP_LENGTHS {
            out.send(&frames::lldp(self.veth.client.mac, len))?;
            sent += Count::one(len as u64);
        }
        // Received after the ingress hook: counted by then.
        for len in LLDP_LENGTHS {
            let got = seen.recv()?.len();
            ensure!(got == len, "sent a {len}-byte frame, received {got}");
        }
        Ok(sent)
    }

    fn metrics(&self) -> Result<Vec<Metric>> {
        let response = http::get(self.ns(), self.listen, "/metrics")?;
        ensure!(response.status == 200, "/metrics: {}", response.status);
        parse_text(response.text()?)
    }

    fn stop(self) -> Result<()> {
        self.daemon.stop()
    }
}

/// The one sample `expr` yields at `time`; an error naming what came back
/// otherwise.
fn one(prom: &Prometheus<'_>, expr: &str, time: f64) -> Result<Sample> {
    let samples = prom.query(expr, Some(time))?;
    match <[Sample; 1]>::try_from(samples) {
        Ok([sample]) => Ok(sample),
        Err(samples) => bail!("`{expr}`: expected one sample, got {samples:#?}"),
    }
}

/// Fails unless `sample` has exactly `labels` besides `__name__`, `job` and
/// `instance` (which must be this lab's), and `value`.
fn expect_sample(
    what: &str,
    sample: &Sample,
    labels: &[(&str, &str)],
    value: f64,
    instance: SocketAddr,
) -> Result<()> {
    let mut own = sample.labels.clone();
    own.remove("__name__");
    let job = own.remove("job");
    let inst = own.remove("instance");
    let want: BTreeMap<String, String> = labels
        .iter()
        // Prometheus drops empty labels.
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ensure!(
        job.as_deref() == Some(JOB) && inst == Some(instance.to_string()),
        "{what}: scraped from the wrong target: {:?}",
        sample.labels
    );
    ensure!(
        own == want && sample.value == value,
        "{what}: expected {want:?} = {value}, got {own:?} = {}",
        sample.value
    );
    Ok(())
}

#[test]
fn prometheus_scrapes_exact_counts_and_every_family() -> Result<()> {
    let lab = ExporterLab::new()?;
    let prom = Prometheus::start(lab.ns(), JOB, &[lab.listen])?;
    let expected = lab.send_plan()?;
    let non_ip = lab.send_non_ip()?;
    // Everything sent has been counted; the first scrape after this sees it.
    let at = prom.scraped_after(JOB, lab.listen, SystemTime::now())?;
    let q = |expr: &str| one(&prom, expr, at);
    let check = |what: &str, expr: &str, labels: &[(&str, &str)], value: f64| {
        expect_sample(what, &q(expr)?, labels, value, lab.listen)
    };

    for p in &PLAN {
        let address = ip(p.address);
        let (rx, tx) = expected[&address];
        let labels = [
            ("interface", IFACE),
            ("address", p.address),
            ("alias", p.alias.unwrap_or("")),
        ];
        for (family, count) in [("receive", rx), ("transmit", tx)] {
            for (unit, value) in [("packets", count.packets), ("bytes", count.bytes)] {
                let name = format!("aliasstat_{family}_{unit}_total");
                check(
                    &name,
                    &format!("{name}{{address=\"{address}\"}}"),
                    &labels,
                    value as f64,
                )?;
            }
        }
        println!(
            "  {:<11} alias {:<7} rx {rx}, tx {tx}: as scraped by Prometheus",
            p.address,
            p.alias.unwrap_or("-")
        );
    }
    // Per family, the totals over this lab's addresses: nothing else was
    // credited to them.
    for v4 in [true, false] {
        let (rx, tx): (Count, Count) = expected
            .iter()
            .filter(|(a, _)| a.is_ipv4() == v4)
            .fold(Default::default(), |(r, t), (_, (rx, tx))| {
                (r + *rx, t + *tx)
            });
        let pattern = if v4 { r"10\\.74\\..+" } else { "fd00:74::.+" };
        for (name, value) in [
            ("aliasstat_receive_packets_total", rx.packets),
            ("aliasstat_receive_bytes_total", rx.bytes),
            ("aliasstat_transmit_packets_total", tx.packets),
            ("aliasstat_transmit_bytes_total", tx.bytes),
        ] {
            let sum = q(&format!("sum({name}{{address=~\"{pattern}\"}})"))?;
            ensure!(
                sum.value == value as f64,
                "sum of {name} over {pattern}: expected {value}, got {}",
                sum.value
            );
        }
    }
    for idle in IDLE {
        let series = prom.query(
            &format!("{{__name__=~\"aliasstat_(receive|transmit)_.+\",address=\"{idle}\"}}"),
            Some(at),
        )?;
        ensure!(series.is_empty(), "{idle} was never sent to: {series:#?}");
    }

    // Presence, with the interface and IFA_LABEL; absent documented
    // addresses at 0 with the interface the file names.
    for (address, label) in [
        ("10.74.0.2", "lab-srv"),
        ("10.74.0.3", "lab-srv:1"),
        ("10.74.0.4", "lab-srv"),
        ("fd00:74::2", ""),
        ("fd00:74::3", ""),
        ("fd00:74::4", ""),
    ] {
        check(
            "aliasstat_address_present",
            &format!("aliasstat_address_present{{address=\"{address}\"}}"),
            &[("interface", IFACE), ("address", address), ("label", label)],
            1.0,
        )?;
    }
    check(
        "aliasstat_address_present (absent)",
        &format!("aliasstat_address_present{{address=\"{STANDBY}\"}}"),
        &[("interface", IFACE), ("address", STANDBY)],
        0.0,
    )?;
    for (address, documented) in [
        ("10.74.0.2", 0.0),
        ("10.74.0.3", 1.0),
        ("10.74.0.4", 0.0),
        ("fd00:74::2", 0.0),
        ("fd00:74::3", 1.0),
        ("fd00:74::4", 0.0),
        (STANDBY, 1.0),
    ] {
        check(
            "aliasstat_address_documented",
            &format!("aliasstat_address_documented{{address=\"{address}\"}}"),
            &[("address", address)],
            documented,
        )?;
    }
    let info = prom.query("aliasstat_alias_info", Some(at))?;
    ensure!(info.len() == 3, "three documented aliases: {info:#?}");
    for (alias, address, owner, purpose) in [
        (
            "web-v4",
            "10.74.0.3",
            "web-team",
            "TLS vhost for shop.example",
        ),
        ("web-v6", "fd00:74::3", "web-team", ""),
        (
            "standby",
            STANDBY,
            "lb-team",
            "keepalived VIP held by the peer",
        ),
    ] {
        check(
            "aliasstat_alias_info",
            &format!("aliasstat_alias_info{{alias=\"{alias}\"}}"),
            &[
                ("alias", alias),
                ("address", address),
                ("owner", owner),
                ("purpose", purpose),
            ],
            1.0,
        )?;
    }

    // The buckets: exactly the LLDP frames in, nothing out, no overflow.
    for (name, direction, value) in [
        ("aliasstat_non_ip_packets_total", "receive", non_ip.packets),
        ("aliasstat_non_ip_bytes_total", "receive", non_ip.bytes),
        ("aliasstat_non_ip_packets_total", "transmit", 0),
        ("aliasstat_non_ip_bytes_total", "transmit", 0),
        ("aliasstat_overflow_packets_total", "receive", 0),
        ("aliasstat_overflow_bytes_total", "receive", 0),
        ("aliasstat_overflow_packets_total", "transmit", 0),
        ("aliasstat_overflow_bytes_total", "transmit", 0),
    ] {
        check(
            name,
            &format!("{name}{{direction=\"{direction}\"}}"),
            &[("interface", IFACE), ("direction", direction)],
            value as f64,
        )?;
    }
    println!("  non_ip receive {non_ip}; overflow 0 both ways");
    // Far below the foreign-series budget, nothing is summed into "other".
    let other = prom.query("{__name__=~\"aliasstat_foreign_other_.+\"}", Some(at))?;
    ensure!(other.is_empty(), "foreign_other series: {other:#?}");

    // Foreign series: every address series whose address neither the host
    // holds nor the file documents (multicast, link housekeeping).
    let addresses = |expr: &str| -> Result<BTreeSet<String>> {
        Ok(prom
            .query(expr, Some(at))?
            .into_iter()
            .map(|s| s.labels.get("address").cloned().unwrap_or_default())
            .collect())
    };
    let known = addresses("aliasstat_address_present == 1 or aliasstat_address_documented == 1")?;
    let series = prom.query(
        "{__name__=~\"aliasstat_(receive|transmit)_packets_total\"}",
        Some(at),
    )?;
    let foreign = series
        .iter()
        .filter(|s| !known.contains(s.labels.get("address").map_or("", String::as_str)))
        .count();
    check(
        "aliasstat_foreign_series",
        "aliasstat_foreign_series",
        &[],
        foreign as f64,
    )?;
    check(
        "aliasstat_foreign_series_limit",
        "aliasstat_foreign_series_limit",
        &[],
        256.0,
    )?;
    // One map entry per (interface, direction, address) series.
    check(
        "aliasstat_map_entries{map=addresses}",
        "aliasstat_map_entries{map=\"addresses\"}",
        &[("map", "addresses")],
        series.len() as f64,
    )?;
    // non_ip and overflow, each way, for the one interface.
    check(
        "aliasstat_map_entries{map=other}",
        "aliasstat_map_entries{map=\"other\"}",
        &[("map", "other")],
        4.0,
    )?;
    check(
        "aliasstat_map_capacity{map=addresses}",
        "aliasstat_map_capacity{map=\"addresses\"}",
        &[("map", "addresses")],
        f64::from(common::names::DEFAULT_ADDRESS_CAPACITY),
    )?;
    check(
        "aliasstat_map_capacity{map=other}",
        "aliasstat_map_capacity{map=\"other\"}",
        &[("map", "other")],
        f64::from(common::names::OTHER_CAPACITY),
    )?;
    println!(
        "  {} address series ({foreign} foreign), as many map entries",
        series.len()
    );
    for direction in ["receive", "transmit"] {
        check(
            "aliasstat_program_attached",
            &format!("aliasstat_program_attached{{direction=\"{direction}\"}}"),
            &[
                ("interface", IFACE),
                ("hook", "tc"),
                ("direction", direction),
            ],
            1.0,
        )?;
    }
    ensure!(
        prom.query("aliasstat_program_attached", Some(at))?.len() == 2,
        "one attachment each way"
    );
    check(
        "aliasstat_build_info",
        "aliasstat_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    )?;
    check(
        "aliasstat_config_last_reload_success",
        "aliasstat_config_last_reload_success",
        &[],
        1.0,
    )?;
    // Loaded at start: between the moments before and after starting it.
    let (before, after) = (
        unix_seconds(lab.started.0).floor(),
        unix_seconds(lab.started.1).ceil(),
    );
    let loaded = q("aliasstat_config_last_reload_timestamp_seconds")?.value;
    ensure!(
        (before..=after).contains(&loaded),
        "config loaded at {loaded}, not within the start [{before}, {after}]"
    );
    let took = q("aliasstat_scrape_duration_seconds")?.value;
    ensure!(took >= 0.0, "scrape duration {took}");
    // process_start_time_seconds is in clock ticks since boot, rounded.
    let process_start = q("process_start_time_seconds")?.value;
    ensure!(
        (before - 1.0..=after + 1.0).contains(&process_start),
        "process started at {process_start}, not within [{before}, {after}]"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    ] {
        let value = q(name)?.value;
        ensure!(value > 0.0, "{name} = {value}");
    }
    ensure!(q("process_cpu_seconds_total")?.value >= 0.0);
    ensure!(q(&format!("up{{job=\"{JOB}\"}}"))?.value == 1.0);
    drop(prom);
    lab.stop()
}

#[test]
fn promtool_check_metrics_is_clean() -> Result<()> {
    let lab = ExporterLab::new()?;
    // Traffic first, so that every family with labels has series.
    lab.send_plan()?;
    lab.send_non_ip()?;
    let response = http::get(lab.ns(), lab.listen, "/metrics")?;
    ensure!(response.status == 200, "/metrics: {}", response.status);
    ensure!(
        response.header("content-type") == Some("text/plain; version=0.0.4; charset=utf-8"),
        "content type {:?}",
        response.header("content-type")
    );
    let text = response.text()?;
    let (code, output) = prometheus::promtool_check_metrics(text)?;
    println!(
        "  promtool check metrics on {} lines: exit {code}, {:?}",
        text.lines().count(),
        output
    );
    ensure!(
        code == 0 && output.trim().is_empty(),
        "promtool check metrics (exit {code}):\n{output}\non:\n{text}"
    );
    lab.stop()
}

/// This lab's per-address counters in one scrape: (family, address) to
/// value, with the alias label.
fn alias_counters(metrics: &[Metric]) -> BTreeMap<(String, String), (String, f64)> {
    metrics
        .iter()
        .filter(|m| {
            m.name.starts_with("aliasstat_receive_") || m.name.starts_with("aliasstat_transmit_")
        })
        .filter(|m| {
            PLAN.iter().any(|p| p.address == m.label("address"))
                || IDLE.contains(&m.label("address"))
        })
        .map(|m| {
            (
                (m.name.clone(), m.label("address").to_owned()),
                (m.label("alias").to_owned(), m.value),
            )
        })
        .collect()
}

/// What [`alias_counters`] must show after `expected`, with `alias` naming
/// each planned address.
fn expected_counters(
    expected: &Expected,
    alias: impl Fn(&Planned) -> &str,
) -> BTreeMap<(String, String), (String, f64)> {
    let mut out = BTreeMap::new();
    for p in &PLAN {
        let (rx, tx) = expected[&ip(p.address)];
        for (family, count) in [("receive", rx), ("transmit", tx)] {
            for (unit, value) in [("packets", count.packets), ("bytes", count.bytes)] {
                out.insert(
                    (
                        format!("aliasstat_{family}_{unit}_total"),
                        p.address.to_owned(),
                    ),
                    (alias(p).to_owned(), value as f64),
                );
            }
        }
    }
    out
}

#[test]
fn http_surface_and_concurrent_scrapes() -> Result<()> {
    let lab = ExporterLab::new()?;
    let expected = lab.send_plan()?;
    let (ns, at) = (lab.ns(), lab.listen);

    for path in [
        "/nope",
        "/metrics/",
        "/metrics/extra",
        "/api/v1/aliases/10.74.0.3",
        "/api/v2/aliases",
        "/healthz/",
    ] {
        let r = http::get(ns, at, path)?;
        ensure!(r.status == 404, "GET {path}: {} {:?}", r.status, r.text());
        let r = http::request(ns, at, "HEAD", path)?;
        ensure!(
            r.status == 404 && r.body.is_empty(),
            "HEAD {path}: {}",
            r.status
        );
    }
    let r = http::get(ns, at, "/healthz")?;
    ensure!(
        (r.status, r.text()?) == (200, "ok\n"),
        "/healthz: {} {:?}",
        r.status,
        r.text()
    );
    let r = http::get(ns, at, "/")?;
    ensure!(
        r.status == 200
            && r.header("content-type") == Some("text/html; charset=utf-8")
            && r.text()?.contains("/metrics"),
        "/: {r:?}"
    );
    let r = http::get(ns, at, "/api/v1/aliases")?;
    ensure!(
        r.status == 200 && r.header("content-type") == Some("application/json"),
        "/api/v1/aliases: {} {:?}",
        r.status,
        r.header("content-type")
    );
    let api = lab::aliases::Aliases::parse(r.text()?)?;
    for p in &PLAN {
        let row = api.row(ip(p.address))?;
        let (rx, tx) = expected[&ip(p.address)];
        ensure!(
            row.rx() == rx && row.tx() == tx && row.alias.as_deref() == p.alias,
            "/api/v1/aliases for {}: {row:#?}",
            p.address
        );
    }

    // HEAD: the GET's status and headers, no body.
    for (path, content_type) in [
        ("/metrics", "text/plain; version=0.0.4; charset=utf-8"),
        ("/healthz", "text/plain; charset=utf-8"),
        ("/api/v1/aliases", "application/json"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let r = http::request(ns, at, "HEAD", path)?;
        ensure!(
            r.status == 200 && r.body.is_empty() && r.header("content-type") == Some(content_type),
            "HEAD {path}: {} {:?} with {} body bytes",
            r.status,
            r.headers,
            r.body.len()
        );
    }
    let r = http::request(ns, at, "HEAD", "/healthz")?;
    ensure!(
        r.header("content-length") == Some("3"),
        "HEAD /healthz announces the GET's length: {:?}",
        r.headers
    );
    let r = http::request(ns, at, "POST", "/metrics")?;
    ensure!(
        r.status == 405 && r.header("allow") == Some("GET, HEAD"),
        "POST /metrics: {} {:?}",
        r.status,
        r.headers
    );
    println!("  404 on unknown paths, HEAD without bodies, 405 on POST");

    // 50 scrapes at once, each on its own connection. Nothing is sent
    // meanwhile, so every one must show the same counts for this lab's
    // addresses: exactly what was sent.
    const SCRAPERS: usize = 50;
    let start = Arc::new(Barrier::new(SCRAPERS));
    let ns_name = ns.name().to_owned();
    let scrapes: Vec<Result<Vec<Metric>>> = thread::scope(|s| {
        let handles: Vec<_> = (0..SCRAPERS)
            .map(|_| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    let r = http::get(ns, at, "/metrics")?;
                    ensure!(r.status == 200, "a concurrent scrape got {}", r.status);
                    parse_text(r.text()?)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scraper does not panic"))
            .collect()
    });
    let want = expected_counters(&expected, |p| p.alias.unwrap_or(""));
    for (i, scrape) in scrapes.into_iter().enumerate() {
        let scrape = scrape.with_context(|| format!("scrape {i} in {ns_name}"))?;
        let got = alias_counters(&scrape);
        ensure!(
            got == want,
            "scrape {i} of {SCRAPERS}: expected {want:#?}\ngot {got:#?}"
        );
    }
    println!(
        "  {SCRAPERS} concurrent scrapes: all 200, all with the same {} counter values",
        want.len()
    );
    lab.stop()
}

#[test]
fn sighup_relabels_series_and_no_count_goes_backwards() -> Result<()> {
    let lab = ExporterLab::new()?;
    let prom = Prometheus::start(lab.ns(), JOB, &[lab.listen])?;
    let began = unix_seconds(SystemTime::now());
    let mut expected = lab.send_plan()?;
    let at = prom.scraped_after(JOB, lab.listen, SystemTime::now())?;

    let before = alias_counters(&lab.metrics()?);
    let want = expected_counters(&expected, |p| p.alias.unwrap_or(""));
    ensure!(before == want, "before the reload: {before:#?}");
    for p in PLAN.iter().filter(|p| p.alias.is_none()) {
        let s = one(
            &prom,
            &format!(
                "aliasstat_receive_packets_total{{address=\"{}\"}}",
                p.address
            ),
            at,
        )?;
        ensure!(
            !s.labels.contains_key("alias"),
            "{} is undocumented: {:?}",
            p.address,
            s.labels
        );
    }

    // Document the two undocumented aliases.
    lab.dir.write("aliases.toml", &aliases_after_reload())?;
    let since = lab.daemon.log().len();
    lab.daemon.hangup()?;
    lab.daemon.wait_for_line(
        since,
        &format!(
            "SIGHUP: reloaded 5 documented aliases from {}",
            lab.config.display()
        ),
        PATIENCE,
    )?;
    let renamed = |m: &BTreeMap<(String, String), (String, f64)>| {
        m.iter()
            .filter(|((_, a), _)| *a == "10.74.0.4" || *a == "fd00:74::4")
            .all(|(_, (alias, _))| alias.starts_with("db-"))
    };
    // The log line comes just before the new file is in use.
    let deadline = std::time::Instant::now() + PATIENCE;
    let after = loop {
        let now = alias_counters(&lab.metrics()?);
        if renamed(&now) || std::time::Instant::now() >= deadline {
            break now;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let want = expected_counters(&expected, |p| p.alias_after_reload);
    ensure!(
        after == want,
        "after the reload: expected {want:#?}\ngot {after:#?}"
    );
    println!("  /metrics after SIGHUP: alias labels db-v4 and db-v6, the same counts");

    // Prometheus sees the new label on the same counts ...
    let reloaded_at = prom.scraped_after(JOB, lab.listen, SystemTime::now())?;
    for p in PLAN.iter().filter(|p| p.alias.is_none()) {
        let (rx, _) = expected[&ip(p.address)];
        let s = one(
            &prom,
            &format!(
                "aliasstat_receive_packets_total{{address=\"{}\"}}",
                p.address
            ),
            reloaded_at,
        )?;
        ensure!(
            s.labels.get("alias").map(String::as_str) == Some(p.alias_after_reload)
                && s.value == rx.packets as f64,
            "{} after the reload: {s:#?}",
            p.address
        );
    }
    // ... and keeps counting on it.
    let client = traffic::udp_socket(
        &lab.veth.client.ns,
        SocketAddr::new(ip(CLIENT4), CLIENT_PORT),
    )?;
    let db4 = ip("10.74.0.4");
    let server = traffic::udp_socket(&lab.veth.server.ns, SocketAddr::new(db4, SERVER_PORT))?;
    for request in [11, 22] {
        traffic::exchange(&client, &server, request, 33)?;
        let (rx, tx) = expected.get_mut(&db4).expect("planned");
        *rx += datagram(db4, request);
        *tx += datagram(db4, 33);
    }
    let ended = prom.scraped_after(JOB, lab.listen, SystemTime::now())?;
    let (rx, tx) = expected[&db4];
    for (name, value) in [
        ("aliasstat_receive_bytes_total", rx.bytes),
        ("aliasstat_transmit_bytes_total", tx.bytes),
    ] {
        let s = one(&prom, &format!("{name}{{address=\"10.74.0.4\"}}"), ended)?;
        ensure!(
            s.value == value as f64 && s.labels.get("alias").map(String::as_str) == Some("db-v4"),
            "{name} for 10.74.0.4 after more traffic: {s:#?}"
        );
    }

    // No count went backwards at any scrape: each series on its own, and
    // each address across its relabelling (old series, then new).
    let window = (ended - began).ceil() as u64 + 5;
    let raw = prom.query_matrix(
        &format!("{{__name__=~\"aliasstat_.+_total\",job=\"{JOB}\"}}[{window}s]"),
        ended,
    )?;
    type Key = (String, String, String, String);
    let mut per_address: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
    let mut samples = 0;
    for series in &raw {
        samples += series.values.len();
        for pair in series.values.windows(2) {
            ensure!(
                pair[1].1 >= pair[0].1,
                "{:?} went from {} to {} between {} and {}",
                series.labels,
                pair[0].1,
                pair[1].1,
                pair[0].0,
                pair[1].0
            );
        }
        let key = |k: &str| series.labels.get(k).cloned().unwrap_or_default();
        per_address
            .entry((
                key("__name__"),
                key("interface"),
                key("direction"),
                key("address"),
            ))
            .or_default()
            .extend(&series.values);
    }
    for ((name, _, _, address), values) in &mut per_address {
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in values.windows(2) {
            ensure!(
                pair[1].1 >= pair[0].1,
                "{name} for {address} went from {} to {} across series at {}",
                pair[0].1,
                pair[1].1,
                pair[1].0
            );
        }
    }
    let relabelled = raw
        .iter()
        .filter(|s| s.labels.get("address").map(String::as_str) == Some("10.74.0.4"))
        .filter(|s| {
            s.labels.get("__name__").map(String::as_str) == Some("aliasstat_receive_packets_total")
        })
        .count();
    ensure!(
        relabelled == 2,
        "10.74.0.4 should have had two series (alias \"\" then \"db-v4\"): {raw:#?}"
    );
    println!(
        "  {} counter series, {samples} samples over {window} s: none went backwards",
        raw.len()
    );
    drop(prom);
    lab.stop()
}
