//! Three documented aliases of two owners on the server end of a veth, a
//! state directory, and what was sent to each alias as the oracle.

use std::{
    cell::RefCell,
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    path::PathBuf,
    process::Command,
};

use anyhow::{Context, Result};
use lab::{
    BpfDir, Count, Daemon, Veth,
    daemon::{Config, Launch, binary},
    ip,
    link::Ipv6,
    procnet::Snmp,
    scratch::Scratch,
    traffic,
};
use serde_json::Value;

/// Short, so that a test spans several intervals in seconds.
pub const INTERVAL: &str = "2s";
pub const CLIENT: &str = "10.96.0.1";

/// (alias, owner, address).
pub const ALIASES: [(&str, &str, &str); 3] = [
    ("shop", "web", "10.96.0.10"),
    ("mail", "web", "10.96.0.11"),
    ("db", "data", "10.96.0.12"),
];

/// In and out counts of one alias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InOut {
    pub rx: Count,
    pub tx: Count,
}

pub struct Lab {
    pub veth: Veth,
    pub pins: BpfDir,
    pub state: Scratch,
    pub config: PathBuf,
    _files: Scratch,
    /// What was sent to and from each alias so far.
    pub sent: RefCell<BTreeMap<&'static str, InOut>>,
    client: UdpSocket,
    servers: BTreeMap<&'static str, UdpSocket>,
}

impl Lab {
    pub fn new() -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        veth.client.add_addr(ip(CLIENT), 24)?;
        // The metrics and Prometheus are reached on the server's loopback.
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        let mut file = String::new();
        for (alias, owner, address) in ALIASES {
            veth.server.add_addr(ip(address), 24)?;
            file += &format!(
                "[[alias]]\nname = \"{alias}\"\naddress = \"{address}\"\nowner = \"{owner}\"\n\n"
            );
        }
        let servers: Vec<IpAddr> = ALIASES.iter().map(|a| ip(a.2)).collect();
        veth.know_each_other(&[ip(CLIENT)], &servers)?;
        traffic::fix_headers(&veth)?;
        let files = Scratch::new("aliases")?;
        let config = files.write("aliases.toml", &file)?;
        let client = traffic::udp_socket(&veth.client.ns, SocketAddr::new(ip(CLIENT), 41000))?;
        let mut sockets = BTreeMap::new();
        for (alias, _, address) in ALIASES {
            let socket = traffic::udp_socket(&veth.server.ns, SocketAddr::new(ip(address), 5300))?;
            sockets.insert(alias, socket);
        }
        Ok(Self {
            veth,
            pins: BpfDir::new("srv")?,
            state: Scratch::new("state")?,
            config,
            _files: files,
            sent: RefCell::default(),
            client,
            servers: sockets,
        })
    }

    pub fn start(&self, more: &[&str]) -> Result<Daemon> {
        let mut config = Config::new(&self.veth.server.ns, &self.pins, &self.veth.server.ifname);
        config.config = Some(&self.config);
        // `more` may name another --state-dir.
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        if !more.contains(&"--state-dir") {
            args.extend(["--state-dir".into(), self.state.path().into()]);
        }
        args.extend(["--history-interval", INTERVAL].map(Into::into));
        args.extend(more.iter().map(Into::into));
        Daemon::start_with(
            &config,
            &Launch {
                args,
                ..Launch::default()
            },
        )
    }

    /// `n` UDP exchanges with `alias`: `request` bytes in, `reply` out.
    pub fn udp(&self, alias: &'static str, n: u64, request: usize, reply: usize) -> Result<()> {
        let server = &self.servers[alias];
        for _ in 0..n {
            traffic::exchange(&self.client, server, request, reply)?;
        }
        let address = server.local_addr()?.ip();
        let mut sent = self.sent.borrow_mut();
        let counts = sent.entry(alias).or_default();
        counts.rx += Count::datagram(address, request).times(n);
        counts.tx += Count::datagram(address, reply).times(n);
        Ok(())
    }

    /// A TCP transfer of `total` bytes to `alias`. In: every segment as
    /// the sender's stack counts it. Out: the receiver's segments (ACKs),
    /// by packets; their bytes are whatever the receiver's own count says.
    pub fn tcp(&self, alias: &'static str, total: u64) -> Result<u64> {
        let address = ip(ALIASES
            .iter()
            .find(|a| a.0 == alias)
            .context("no such alias")?
            .2);
        let (client_before, server_before) = (
            Snmp::read(&self.veth.client.ns)?,
            Snmp::read(&self.veth.server.ns)?,
        );
        let bulk = traffic::tcp_bulk(
            &self.veth.client.ns,
            &self.veth.server.ns,
            SocketAddr::new(address, 5400),
            total,
        )?;
        let (client_after, server_after) = (
            Snmp::read(&self.veth.client.ns)?,
            Snmp::read(&self.veth.server.ns)?,
        );
        let segments = client_after.delta(&client_before, "Tcp", "OutSegs")?
            + client_after.delta(&client_before, "Tcp", "RetransSegs")?;
        let acks = server_after.delta(&server_before, "Tcp", "OutSegs")?
            + server_after.delta(&server_before, "Tcp", "RetransSegs")?;
        self.sent.borrow_mut().entry(alias).or_default().rx +=
            traffic::wire_count(segments, bulk.payload_sent);
        Ok(acks)
    }

    /// `aliasstat detach`: the maps go, as in a reboot.
    pub fn detach(&self) -> Result<String> {
        lab::cmd::run(
            Command::new(binary()?)
                .arg("detach")
                .arg("--bpffs")
                .arg(self.pins.path()),
        )
    }
}

/// `aliasstat report --format json` with `args`, and its exit status.
pub fn report(args: &[&str]) -> Result<(bool, Value, String)> {
    let out = Command::new(binary()?)
        .arg("report")
        .args(["--format", "json"])
        .args(args)
        .output()
        .context("failed to run aliasstat report")?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = if out.status.success() {
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "report printed no JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?
    } else {
        Value::Null
    };
    Ok((out.status.success(), json, stderr))
}

/// A report's rows by name: (in, out).
pub fn rows(report: &Value, by: &str) -> BTreeMap<String, InOut> {
    let count = |v: &Value| {
        Count::new(
            v["packets"].as_u64().unwrap_or(0),
            v["bytes"].as_u64().unwrap_or(0),
        )
    };
    report["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r[by].as_str().unwrap_or_default().to_owned(),
                InOut {
                    rx: count(&r["in"]),
                    tx: count(&r["out"]),
                },
            )
        })
        .collect()
}

/// The sent counts summed per owner.
pub fn by_owner(sent: &BTreeMap<&'static str, InOut>) -> BTreeMap<String, InOut> {
    let mut owners: BTreeMap<String, InOut> = BTreeMap::new();
    for (alias, c) in sent {
        let owner = ALIASES.iter().find(|a| a.0 == *alias).map_or("", |a| a.1);
        let o = owners.entry(owner.to_owned()).or_default();
        o.rx += c.rx;
        o.tx += c.tx;
    }
    owners
}

/// Every interval of this test lies in this period.
pub const WHOLE: [&str; 4] = ["--from", "2000-01-01", "--to", "2100-01-01"];
