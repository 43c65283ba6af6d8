//! Live throughput: a UDP flood from one namespace to another over a veth,
//! with nothing, aliasstat, or nftables accounting on the receiving end.
//!
//! Every setup gets a veth pair of its own, made once, so that trials can
//! go round the setups (a slow moment of the machine then touches all of
//! them) without re-attaching anything in between. The sender is pinned to
//! the first CPU; on a veth the receiver's stack runs in the sender's
//! softirq on that same CPU, so the receive path's cost, the hook's
//! included, shows as fewer packets per second. Received packets are
//! counted by the receiver's UDP MIB (`InDatagrams + RcvbufErrors`): every
//! datagram that went through the whole receive path, hooks included, up
//! to the socket. Nothing reads the socket, so after its buffer fills each
//! datagram is dropped there: a reader on the other core made trials swing
//! by ±20% (its wake-ups), where this holds them within a few percent.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader, Write as _},
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    process::{Child, ChildStdin, ChildStdout, Stdio},
};

use anyhow::{Context as _, Result, bail, ensure};
use lab::{
    BpfDir, Daemon, Hook, Netns, Veth,
    daemon::{Config, Launch},
    link::Ipv6,
};
use serde_json::Value;

use super::{
    Plan, Verdict,
    stats::{count, median},
    tools::{Tools, arg},
};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 2);
const PORT: u16 = 9000;
/// The smallest UDP datagram that makes a minimum-size (60-byte) frame:
/// the most packets per second, so the per-packet cost weighs most.
const PAYLOAD: &str = "18";
const NFT_TABLE: &str = "aliasstat_bench";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Nothing,
    /// An XDP program that only returns XDP_PASS: attaching any XDP program
    /// switches a veth to its NAPI receive path, which this isolates.
    EmptyXdp,
    /// The daemon as it runs by default: services counted too.
    Aliasstat(Hook),
    /// The daemon on TC with `--services off`: what per-service counting
    /// costs is [`Setup::Aliasstat`]'s TC row against this one.
    ServicesOff,
    /// `ip daddr X counter`, one rule per address.
    NftChain(usize),
    /// A set with a counter per element, one lookup rule.
    NftSet(usize),
}

impl Setup {
    fn name(self) -> String {
        match self {
            Self::Nothing => "no program".to_owned(),
            Self::EmptyXdp => "empty XDP program (baseline)".to_owned(),
            Self::Aliasstat(Hook::Tc) => "aliasstat, TC (tcx)".to_owned(),
            Self::Aliasstat(Hook::Xdp) => "aliasstat, XDP".to_owned(),
            Self::ServicesOff => "aliasstat, TC (tcx), `--services off`".to_owned(),
            Self::NftChain(n) => format!("nftables, chain of {n} `ip daddr X counter` rules"),
            Self::NftSet(n) => format!("nftables, set of {n} addresses with counters"),
        }
    }

    fn all(plan: &Plan) -> Vec<Self> {
        let mut all = vec![
            Self::Nothing,
            Self::EmptyXdp,
            Self::Aliasstat(Hook::Tc),
            Self::Aliasstat(Hook::Xdp),
            Self::ServicesOff,
        ];
        all.extend(plan.nft_sizes.iter().map(|&n| Self::NftChain(n)));
        all.extend(plan.nft_sizes.iter().map(|&n| Self::NftSet(n)));
        all
    }
}

/// What keeps a setup's program attached; dropped after its veth's use.
enum Attached {
    Nothing,
    Daemon(Daemon),
    /// `probe hold-xdp`, which detaches when its stdin closes; its stdout
    /// is kept open for its last line.
    Probe(Child, Option<ChildStdin>, BufReader<ChildStdout>),
}

/// A veth pair with one setup on its receiving end. Fields drop in order:
/// the program goes before its pins and its namespace.
struct Bench {
    setup: Setup,
    attached: Attached,
    _pins: Option<BpfDir>,
    _sink: UdpSocket,
    veth: Veth,
    trials: Vec<f64>,
}

pub struct Row {
    pub setup: Setup,
    pub pps: f64,
    /// Every trial's packets per second.
    pub trials: Vec<f64>,
}

pub struct Throughput {
    pub rows: Vec<Row>,
    pub seconds: f64,
    pub trials: usize,
}

pub fn run(tools: &Tools, plan: &Plan) -> Result<Throughput> {
    let mut benches = Vec::new();
    for setup in Setup::all(plan) {
        benches
            .push(prepare(tools, setup).with_context(|| format!("setting up {}", setup.name()))?);
    }
    for _ in 0..plan.trials {
        for bench in &mut benches {
            let pps = trial(tools, bench, plan.seconds)
                .with_context(|| format!("flooding {}", bench.setup.name()))?;
            bench.trials.push(pps);
        }
    }
    let mut rows = Vec::new();
    for bench in benches {
        if let Setup::NftSet(_) = bench.setup {
            // The set must really have counted, or this measured a lookup
            // without accounting.
            let listed = bench
                .veth
                .server
                .ns
                .exec("nft")
                .args(["list", "table", "netdev", NFT_TABLE])
                .output()?;
            let listed = String::from_utf8_lossy(&listed.stdout);
            ensure!(
                listed.contains(&format!("{SERVER} counter packets"))
                    && !listed.contains(&format!("{SERVER} counter packets 0 ")),
                "the nftables set did not count {SERVER}:\n{listed}"
            );
        }
        rows.push(Row {
            setup: bench.setup,
            pps: median(&bench.trials).context("no trials")?,
            trials: bench.trials.clone(),
        });
        teardown(bench)?;
    }
    Ok(Throughput {
        rows,
        seconds: plan.seconds,
        trials: plan.trials,
    })
}

fn prepare(tools: &Tools, setup: Setup) -> Result<Bench> {
    let veth = Veth::new(Ipv6::Off)?;
    veth.client.add_addr(CLIENT.into(), 24)?;
    veth.server.add_addr(SERVER.into(), 24)?;
    veth.know_each_other(&[CLIENT.into()], &[SERVER.into()])?;
    let sink = sink(&veth.server.ns)?;
    let (attached, pins) = match setup {
        Setup::Nothing => (Attached::Nothing, None),
        Setup::EmptyXdp => {
            let mut child = veth
                .server
                .ns
                .exec(&tools.probe)
                .args(["hold-xdp", "--iface", &veth.server.ifname])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("could not start `probe hold-xdp`")?;
            let stdin = child.stdin.take();
            let mut stdout = BufReader::new(child.stdout.take().context("stdout is piped")?);
            let mut line = String::new();
            stdout.read_line(&mut line)?;
            ensure!(
                line.contains("attached"),
                "probe hold-xdp did not attach: `{line}`"
            );
            (Attached::Probe(child, stdin, stdout), None)
        }
        Setup::Aliasstat(_) | Setup::ServicesOff => {
            let pins = BpfDir::new("bench")?;
            let mut config = Config::new(&veth.server.ns, &pins, &veth.server.ifname);
            let mut launch = Launch::default();
            if let Setup::Aliasstat(hook) = setup {
                config.hook = hook;
            } else {
                launch.args = vec!["--services".into(), "off".into()];
            }
            let daemon = Daemon::start_with(&config, &launch)?;
            (Attached::Daemon(daemon), Some(pins))
        }
        Setup::NftChain(n) | Setup::NftSet(n) => {
            nft(&veth.server.ns, &ruleset(setup, &veth.server.ifname, n))?;
            (Attached::Nothing, None)
        }
    };
    Ok(Bench {
        setup,
        attached,
        _pins: pins,
        _sink: sink,
        veth,
        trials: Vec::new(),
    })
}

fn teardown(bench: Bench) -> Result<()> {
    let Bench { attached, .. } = bench;
    match attached {
        Attached::Nothing => Ok(()),
        Attached::Daemon(daemon) => daemon.stop(),
        Attached::Probe(mut child, stdin, mut stdout) => {
            drop(stdin);
            std::io::Read::read_to_end(&mut stdout, &mut Vec::new())?;
            let status = child.wait()?;
            ensure!(status.success(), "probe hold-xdp exited with {status}");
            Ok(())
        }
    }
}

/// The receiving socket: bound so that datagrams reach UDP (an unbound
/// port would answer each with an ICMP error), and never read.
fn sink(ns: &Netns) -> Result<UdpSocket> {
    let addr = SocketAddr::new(IpAddr::V4(SERVER), PORT);
    Ok(ns.enter(|| UdpSocket::bind(addr))??)
}

/// One flood of `seconds`; the receiver's packets per second.
fn trial(tools: &Tools, bench: &Bench, seconds: f64) -> Result<f64> {
    let ns = &bench.veth.server.ns;
    let before = udp_received(ns)?;
    let sent = flood(tools, &bench.veth, seconds)?;
    let after = udp_received(ns)?;
    let received = after.saturating_sub(before);
    ensure!(received > 0, "nothing arrived ({} sent)", sent.0);
    Ok(received as f64 / sent.1)
}

/// Runs the sender in the client namespace: (datagrams sent, seconds).
fn flood(tools: &Tools, veth: &Veth, seconds: f64) -> Result<(u64, f64)> {
    let out = crate::cmd::stdout(
        veth.client
            .ns
            .exec(arg(&tools.udpflood))
            .args(["--from", &CLIENT.to_string()])
            .args(["--to", &SocketAddr::new(SERVER.into(), PORT).to_string()])
            .args(["--seconds", &seconds.to_string(), "--cpu", "0"])
            .args(["--payload", PAYLOAD, "--batch", "64"]),
    )?;
    let report: Value = serde_json::from_str(out.trim())
        .with_context(|| format!("udpflood printed no JSON: {out}"))?;
    match (report["sent"].as_u64(), report["seconds"].as_f64()) {
        (Some(sent), Some(secs)) if secs > 0.0 => Ok((sent, secs)),
        _ => bail!("udpflood printed {out}"),
    }
}

/// `InDatagrams + RcvbufErrors` of the namespace's UDP MIB: every
/// datagram that reached a socket, delivered or dropped for a full buffer.
fn udp_received(ns: &Netns) -> Result<u64> {
    let snmp = ns.enter(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))??;
    udp_mib(&snmp).context("no Udp lines in /proc/net/snmp")
}

fn udp_mib(snmp: &str) -> Option<u64> {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let names: Vec<&str> = udp.next()?.split_whitespace().collect();
    let values: Vec<&str> = udp.next()?.split_whitespace().collect();
    let field = |name: &str| -> Option<u64> {
        let at = names.iter().position(|n| *n == name)?;
        values.get(at)?.parse().ok()
    };
    Some(field("InDatagrams")? + field("RcvbufErrors")?)
}

/// The nftables ruleset: `n` addresses at the same ingress hook as
/// aliasstat's TC program, the flood's destination last. Counter rules do
/// not stop the chain, so every packet is compared with every address.
fn ruleset(setup: Setup, iface: &str, n: usize) -> String {
    let mut addrs: Vec<String> = (1..n)
        .map(|i| format!("10.91.{}.{}", i / 256, i % 256))
        .collect();
    addrs.push(SERVER.to_string());
    let head = format!(
        "table netdev {NFT_TABLE} {{\n  chain ingress {{\n    type filter hook ingress device \"{iface}\" priority 0; policy accept;\n"
    );
    match setup {
        Setup::NftSet(_) => format!(
            "table netdev {NFT_TABLE} {{\n  set acct {{\n    type ipv4_addr; counter;\n    elements = {{ {} }}\n  }}\n  chain ingress {{\n    type filter hook ingress device \"{iface}\" priority 0; policy accept;\n    ip daddr @acct\n  }}\n}}\n",
            addrs.join(", ")
        ),
        _ => {
            let mut rules = head;
            for a in &addrs {
                let _ = writeln!(rules, "    ip daddr {a} counter");
            }
            rules + "  }\n}\n"
        }
    }
}

fn nft(ns: &Netns, ruleset: &str) -> Result<()> {
    let mut child = ns
        .exec("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start nft (is the nftables package installed?)")?;
    child
        .stdin
        .take()
        .context("stdin is piped")?
        .write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "nft -f failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Throughput {
    fn pps(&self, setup: Setup) -> Option<f64> {
        self.rows.iter().find(|r| r.setup == setup).map(|r| r.pps)
    }

    /// Nanoseconds a setup adds to each packet: the difference of the
    /// per-packet times, which unlike the pps ratio adds up across hooks.
    fn overhead(&self, setup: Setup) -> Option<f64> {
        let base = self.pps(Setup::Nothing)?;
        Some(1e9 / self.pps(setup)? - 1e9 / base)
    }

    /// What a live trial can tell apart: half the spread of the per-packet
    /// times over the no-program trials. Smaller added costs are noise.
    fn resolution(&self) -> Option<f64> {
        let base = self.rows.iter().find(|r| r.setup == Setup::Nothing)?;
        let times: Vec<f64> = base.trials.iter().map(|p| 1e9 / p).collect();
        let max = times.iter().copied().reduce(f64::max)?;
        let min = times.iter().copied().reduce(f64::min)?;
        Some((max - min) / 2.0)
    }

    pub fn table(&self) -> String {
        let base = self.pps(Setup::Nothing).unwrap_or(f64::NAN);
        let mut t = String::from(
            "| receiving end | received packets/s | vs no program | added per packet |\n|---|---|---|---|\n",
        );
        for r in &self.rows {
            let over = self.overhead(r.setup).unwrap_or(f64::NAN);
            let _ = writeln!(
                t,
                "| {} | {} | {:.1}% | {over:+.0} ns |",
                r.setup.name(),
                count(r.pps),
                100.0 * r.pps / base
            );
        }
        let _ = writeln!(
            t,
            "\n{PAYLOAD}-byte UDP payloads (60-byte frames), {} s per trial, median of {} trials. \
             Resolution: ±{:.0} ns per packet (half the spread of the no-program trials); \
             smaller added costs, negative ones included, are noise.",
            self.seconds,
            self.trials,
            self.resolution().unwrap_or(f64::NAN)
        );
        t
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        // Each hook against the matching empty setup: for XDP the empty XDP
        // program, since attaching any switches a veth to its NAPI path.
        for (hook, empty) in [(Hook::Tc, Setup::Nothing), (Hook::Xdp, Setup::EmptyXdp)] {
            let setup = Setup::Aliasstat(hook);
            if let (Some(base), Some(pps)) = (self.pps(empty), self.pps(setup)) {
                v.push(Verdict::at_least(
                    &format!("throughput with {}, vs {}", setup.name(), empty.name()),
                    100.0 * pps / base,
                    95.0,
                    "%",
                ));
            }
        }
        // Both count addresses on TC; only one also counts services, at
        // the socket the flood is delivered to.
        if let (Some(off), Some(on)) = (
            self.pps(Setup::ServicesOff),
            self.pps(Setup::Aliasstat(Hook::Tc)),
        ) {
            v.push(Verdict::at_least(
                "live UDP to a bound socket, services on vs `--services off` (TC)",
                100.0 * on / off,
                95.0,
                "%",
            ));
        }
        // nftables is compared with aliasstat's default hook, TC, at the
        // same point of the path. An added cost under the resolution cannot
        // be told from zero, so it is floored there: a ratio of noise would
        // say nothing.
        let floor = self.resolution().unwrap_or(0.0).max(1.0);
        let Some(ours) = self.overhead(Setup::Aliasstat(Hook::Tc)) else {
            return v;
        };
        let sizes: Vec<usize> = self
            .rows
            .iter()
            .filter_map(|r| match r.setup {
                Setup::NftChain(n) => Some(n),
                _ => None,
            })
            .collect();
        for (n, needed) in [(sizes.first(), 1.0), (sizes.last(), 3.0)] {
            let Some(&n) = n else { continue };
            for setup in [Setup::NftChain(n), Setup::NftSet(n)] {
                let Some(theirs) = self.overhead(setup) else {
                    continue;
                };
                let what = format!(
                    "{}: added cost over aliasstat TC's (both floored at the ±{floor:.0} ns resolution)",
                    setup.name()
                );
                let verdict =
                    Verdict::at_least(&what, theirs.max(floor) / ours.max(floor), needed, "×");
                v.push(if theirs < floor && ours < floor {
                    verdict.undecided("both added costs are below the resolution".to_owned())
                } else {
                    verdict
                });
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_mib_adds_delivered_and_buffer_drops() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
                    Udp: 100 3 7 0 25 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(udp_mib(snmp), Some(125));
        assert_eq!(udp_mib("Ip: x\nIp: 1\n"), None);
    }

    #[test]
    fn rulesets_put_the_destination_last() {
        let chain = ruleset(Setup::NftChain(3), "lab-srv", 3);
        let rules: Vec<&str> = chain.lines().filter(|l| l.contains("counter")).collect();
        assert_eq!(
            rules,
            [
                "    ip daddr 10.91.0.1 counter",
                "    ip daddr 10.91.0.2 counter",
                "    ip daddr 10.90.0.2 counter"
            ]
        );
        let set = ruleset(Setup::NftSet(2), "lab-srv", 2);
        assert!(set.contains("elements = { 10.91.0.1, 10.90.0.2 }"), "{set}");
        assert!(set.contains("ip daddr @acct"), "{set}");
    }

    #[test]
    fn overhead_is_the_difference_of_packet_times() {
        let t = Throughput {
            rows: vec![
                Row {
                    setup: Setup::Nothing,
                    pps: 1e6,
                    trials: vec![0.9e6, 1e6, 1.1e6],
                },
                Row {
                    setup: Setup::Aliasstat(Hook::Tc),
                    pps: 0.5e6,
                    trials: vec![0.5e6],
                },
            ],
            seconds: 1.0,
            trials: 1,
        };
        assert_eq!(t.overhead(Setup::Aliasstat(Hook::Tc)), Some(1000.0));
        // Half the spread of the no-program trials' packet times.
        let r = t.resolution().unwrap();
        assert!((r - (1e9 / 0.9e6 - 1e9 / 1.1e6) / 2.0).abs() < 1e-6, "{r}");
    }
}
