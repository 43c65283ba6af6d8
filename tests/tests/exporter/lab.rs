//! The exporter lab: what it sends, its alias files, the daemon it
//! scrapes, and the checks the cases share.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    time::{Duration, SystemTime},
};

use anyhow::{Result, bail, ensure};
use lab::{
    Count, Daemon, Netns, Veth,
    frames::{self, ETH_P_LLDP},
    http, ip,
    link::Ipv6,
    prometheus::{Metric, Prometheus, Sample, parse_text},
    served::{Listen, Served},
    traffic::{self, PacketSocket},
};

pub const CLIENT_PORT: u16 = 40000;
pub const SERVER_PORT: u16 = 5300;
pub const JOB: &str = "aliasstat";
pub const IFACE: &str = "lab-srv";
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const CLIENT4: &str = "10.74.0.1";
pub const CLIENT6: &str = "fd00:74::1";
/// The server's primaries: on the host, never sent to.
pub const IDLE: [&str; 2] = ["10.74.0.2", "fd00:74::2"];
/// A documented alias the host does not hold.
pub const STANDBY: &str = "10.74.0.100";

/// Per alias: its address, its name in the first alias file (`None`:
/// undocumented), its name after the SIGHUP, the request payloads the
/// client sends it and the reply payload it answers each with. Counts and
/// sizes differ between addresses and directions, so counts credited to
/// the wrong series cannot add up.
pub struct Planned {
    pub address: &'static str,
    pub alias: Option<&'static str>,
    pub alias_after_reload: &'static str,
    pub requests: &'static [usize],
    pub reply: usize,
}

pub const PLAN: [Planned; 4] = [
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
pub const LLDP_LENGTHS: [usize; 3] = [60, 64, 333];

pub const ALIASES_BEFORE: &str = r#"[[alias]]
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

pub fn aliases_after_reload() -> String {
    format!(
        "{ALIASES_BEFORE}\n[[alias]]\nname = \"db-v4\"\naddress = \"10.74.0.4\"\nowner = \"db-team\"\n\n\
         [[alias]]\nname = \"db-v6\"\naddress = \"fd00:74::4\"\nowner = \"db-team\"\n"
    )
}

/// Per address: what the server received and sent.
pub type Expected = BTreeMap<IpAddr, (Count, Count)>;

/// A daemon on the server end of a veth, documented by a temp alias file,
/// serving HTTP on the server namespace's loopback.
pub struct ExporterLab {
    pub daemon: Daemon,
    /// Bounds for the daemon's start time, for the timestamps it exports.
    pub started: (SystemTime, SystemTime),
    pub served: Served,
    pub veth: Veth,
}

impl ExporterLab {
    pub fn new() -> Result<Self> {
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

        let served = Served::new("exp", &veth.server, ALIASES_BEFORE, Listen::Loopback)?;
        let before = SystemTime::now();
        let daemon = served.start(&veth.server)?;
        let after = SystemTime::now();
        Ok(Self {
            daemon,
            started: (before, after),
            served,
            veth,
        })
    }

    pub fn ns(&self) -> &Netns {
        &self.veth.server.ns
    }

    pub fn listen(&self) -> SocketAddr {
        self.served.listen()
    }

    /// Sends `PLAN`, each request answered before the next goes out.
    pub fn send_plan(&self) -> Result<Expected> {
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
                    *rx += Count::datagram(address, request);
                    *tx += Count::datagram(address, p.reply);
                }
            }
        }
        Ok(expected)
    }

    /// Sends [`LLDP_LENGTHS`] to the server; returns what its ingress must
    /// count as non-IP.
    pub fn send_non_ip(&self) -> Result<Count> {
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

    pub fn metrics(&self) -> Result<Vec<Metric>> {
        let response = http::get(self.ns(), self.listen(), "/metrics")?;
        ensure!(response.status == 200, "/metrics: {}", response.status);
        parse_text(response.text()?)
    }

    pub fn stop(self) -> Result<()> {
        self.daemon.stop()
    }
}

/// The one sample `expr` yields at `time`; an error naming what came back
/// otherwise.
pub fn one(prom: &Prometheus<'_>, expr: &str, time: f64) -> Result<Sample> {
    let samples = prom.query(expr, Some(time))?;
    match <[Sample; 1]>::try_from(samples) {
        Ok([sample]) => Ok(sample),
        Err(samples) => bail!("`{expr}`: expected one sample, got {samples:#?}"),
    }
}

/// Fails unless `sample` has exactly `labels` besides `__name__`, `job` and
/// `instance` (which must be this lab's), and `value`.
pub fn expect_sample(
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

/// This lab's per-address counters in one scrape: (family, address) to
/// value, with the alias label.
pub fn alias_counters(metrics: &[Metric]) -> BTreeMap<(String, String), (String, f64)> {
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
pub fn expected_counters(
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
