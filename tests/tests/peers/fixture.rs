//! Three client addresses on one side of a veth, two documented aliases on
//! the other, the daemon counting on the aliases' side, and what each
//! (alias, client) pair should have counted.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use anyhow::{Context, Result, bail};
use lab::{
    BpfDir, Count, Daemon, Veth,
    daemon::{Config, Launch},
    http,
    link::Ipv6,
    scratch::Scratch,
    traffic,
};
use serde_json::Value;

pub const CLIENT_PORT: u16 = 40000;
pub const SERVER_PORT: u16 = 5300;

/// What the server should have counted per (alias, client): rx, tx.
pub type Pairs = BTreeMap<(IpAddr, IpAddr), (Count, Count)>;

pub struct Lab {
    // IPv6 off: its link-local housekeeping would add peers (and their
    // multicast) that the tests do not send.
    pub veth: Veth,
    pub pins: BpfDir,
    pub state: Scratch,
    pub config: PathBuf,
    pub clients: [IpAddr; 3],
    pub aliases: [IpAddr; 2],
    pub listen: SocketAddr,
}

impl Lab {
    /// The addresses are in 10.`net`.0.0/24, so that cases never share one.
    pub fn new(net: u8) -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        let at = |host| IpAddr::V4(Ipv4Addr::new(10, net, 0, host));
        let clients = [at(1), at(2), at(3)];
        let aliases = [at(10), at(11)];
        for c in clients {
            veth.client.add_addr(c, 24)?;
        }
        for a in aliases {
            veth.server.add_addr(a, 24)?;
        }
        veth.know_each_other(&clients, &aliases)?;
        // The API listens on loopback; the daemon counts only the veth.
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        let state = Scratch::new("peers-state")?;
        let config = state.write(
            "aliases.toml",
            &format!(
                "[[alias]]\nname = \"shop-tls\"\naddress = \"{}\"\n\n[[alias]]\nname = \"old-api\"\naddress = \"{}\"\n",
                aliases[0], aliases[1]
            ),
        )?;
        Ok(Self {
            pins: BpfDir::new("peers")?,
            listen: "127.0.0.1:9864".parse()?,
            veth,
            state,
            config,
            clients,
            aliases,
        })
    }

    /// `aliasstat run` on the aliases' side, its record in a directory of
    /// its own, with `extra` flags.
    pub fn start(&self, extra: &[&str]) -> Result<Daemon> {
        self.start_binary(None, extra)
    }

    /// [`Lab::start`] with another build of aliasstat (`None`: the one
    /// under test).
    pub fn start_binary(&self, binary: Option<PathBuf>, extra: &[&str]) -> Result<Daemon> {
        let state_dir = self.state.path().join("state");
        let mut args: Vec<OsString> = vec!["--state-dir".into(), state_dir.into()];
        args.extend(extra.iter().map(OsString::from));
        Daemon::start_with(
            &Config {
                config: Some(&self.config),
                listen: Some(self.listen),
                ..Config::new(&self.veth.server.ns, &self.pins, &self.veth.server.ifname)
            },
            &Launch {
                args,
                binary,
                ..Launch::default()
            },
        )
    }

    /// Client `client` sends one datagram of each of `requests` to alias
    /// `alias`, each answered with `reply` bytes; adds what the server
    /// counts to `pairs`.
    pub fn exchange(
        &self,
        pairs: &mut Pairs,
        client: usize,
        alias: usize,
        requests: &[usize],
        reply: usize,
    ) -> Result<()> {
        let (c, a) = (self.clients[client], self.aliases[alias]);
        let from = traffic::udp_socket(&self.veth.client.ns, SocketAddr::new(c, CLIENT_PORT))?;
        let to = traffic::udp_socket(&self.veth.server.ns, SocketAddr::new(a, SERVER_PORT))?;
        for &request in requests {
            traffic::exchange(&from, &to, request, reply)?;
            let (rx, tx) = pairs.entry((a, c)).or_default();
            *rx += Count::datagram(a, request);
            *tx += Count::datagram(a, reply);
        }
        Ok(())
    }

    /// `GET /api/v1/peers`, parsed.
    pub fn api(&self) -> Result<Vec<Value>> {
        let resp = http::get(&self.veth.server.ns, self.listen, "/api/v1/peers")?;
        if resp.status != 200 {
            bail!("/api/v1/peers answered {}: {}", resp.status, resp.text()?);
        }
        serde_json::from_str(resp.text()?).context("/api/v1/peers is not a JSON array")
    }

    /// `/metrics`, as text.
    pub fn metrics(&self) -> Result<String> {
        let resp = http::get(&self.veth.server.ns, self.listen, "/metrics")?;
        Ok(resp.text()?.to_owned())
    }

    /// `aliasstat peers ARGS` against the daemon, in its namespace.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        lab::cmd::run(
            self.veth
                .server
                .ns
                .exec(lab::daemon::binary()?)
                .arg("peers")
                .args(["--url", &format!("http://{}", self.listen)])
                .args(args),
        )
    }
}

/// The object of `address` in an `/api/v1/peers` answer.
pub fn object(list: &[Value], address: IpAddr) -> Result<&Value> {
    match list.iter().find(|o| o["address"] == address.to_string()) {
        Some(o) => Ok(o),
        None => bail!("no object for {address} in {list:#?}"),
    }
}

/// The pairs an `/api/v1/peers` answer lists for `aliases`, with their
/// counts, in the form of [`Pairs`].
pub fn listed(list: &[Value], aliases: &[IpAddr]) -> Result<Pairs> {
    let mut pairs = Pairs::new();
    for &alias in aliases {
        for p in object(list, alias)?["peers"]
            .as_array()
            .context("peers is not an array")?
        {
            let n = |field: &str| p[field].as_u64().context("a count is not a number");
            let peer: IpAddr = p["peer"].as_str().context("peer")?.parse()?;
            let rx = Count::new(n("rx_packets")?, n("rx_bytes")?);
            let tx = Count::new(n("tx_packets")?, n("tx_bytes")?);
            pairs.insert((alias, peer), (rx, tx));
        }
    }
    Ok(pairs)
}

/// The value of the one sample of `metric` whose labels contain
/// `labels` (`name="value"` pairs, in the order written).
pub fn sample(text: &str, metric: &str, labels: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| l.contains(labels))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
