//! Pieces for the robustness tests (`tests/robustness`): steady background
//! traffic with its own exact account, the daemon's memory and
//! capabilities from /proc, a minimal HTTP client for scrapes, an upgraded
//! binary, and an interface that can be deleted and created again.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fmt::Write as _,
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

use crate::{BpfDir, Count, Netns, Snapshot, Veth, cmd, link::mac_str, traffic};

/// Payload sizes a [`UdpStream`] cycles through: empty, odd, and up to
/// what a 1500-byte MTU carries over IPv6, so a miscounted byte shows.
const PAYLOADS: [usize; 6] = [0, 17, 100, 512, 1000, 1400];

/// What a [`UdpStream`] sent and what arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpTally {
    /// Datagrams the sender's stack accepted, as IP-layer packets/bytes.
    pub sent: Count,
    /// `sendto` calls that failed (the link or the address was gone).
    pub refused: u64,
    /// Datagrams the receiving socket read.
    pub received: u64,
}

/// UDP from `from` to `to` at a steady, modest rate on a thread of its
/// own, until [`UdpStream::finish`]: traffic that keeps flowing while a
/// test kills, upgrades or re-attaches the daemon.
///
/// The rate (about 1000 datagrams per second) is far below what a veth
/// carries, so none is dropped on the way and every datagram the sender's
/// stack accepted crosses the receiver's ingress hook.
pub struct UdpStream {
    stop: Arc<AtomicBool>,
    sender: JoinHandle<Result<UdpTally>>,
    receiver: JoinHandle<u64>,
}

impl UdpStream {
    pub fn start(from_ns: &Netns, from: SocketAddr, to_ns: &Netns, to: SocketAddr) -> Result<Self> {
        let tx = traffic::udp_socket(from_ns, from)?;
        let rx = traffic::udp_socket(to_ns, to)?;
        // Short, so the receiver notices `stop` soon after the last datagram.
        rx.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let sending = stop.clone();
        let sender = thread::spawn(move || send_until(&tx, to, &sending));
        let receiving = stop.clone();
        let receiver = thread::spawn(move || receive_until(&rx, &receiving));
        Ok(Self {
            stop,
            sender,
            receiver,
        })
    }

    /// Whether the sender is still running (it stops only when told, or on
    /// an unexpected error).
    pub fn is_running(&self) -> bool {
        !self.sender.is_finished()
    }

    /// Stops sending, lets the last datagrams arrive, and returns the tally.
    pub fn finish(self) -> Result<UdpTally> {
        self.stop.store(true, Ordering::SeqCst);
        let mut tally = self.sender.join().expect("the sender does not panic")?;
        tally.received = self.receiver.join().expect("the receiver does not panic");
        Ok(tally)
    }
}

fn send_until(socket: &UdpSocket, to: SocketAddr, stop: &AtomicBool) -> Result<UdpTally> {
    let mut tally = UdpTally::default();
    let buf = [0xa5u8; 1400];
    for payload in PAYLOADS.iter().cycle() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match socket.send_to(&buf[..*payload], to) {
            Ok(n) => {
                ensure!(n == *payload, "sent {n} of {payload} bytes to {to}");
                tally.sent += Count::datagram(to.ip(), *payload);
            }
            // The address or the interface is gone for the moment: the
            // stack sent nothing, and that is what the tally says.
            Err(_) => tally.refused += 1,
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(tally)
}

fn receive_until(socket: &UdpSocket, stop: &AtomicBool) -> u64 {
    let mut buf = [0u8; 2048];
    let mut received = 0;
    // After `stop`, keep reading until the socket has been quiet for a
    // read timeout: what is still in flight then is read too.
    loop {
        match socket.recv_from(&mut buf) {
            Ok(_) => received += 1,
            Err(_) if stop.load(Ordering::SeqCst) => return received,
            Err(_) => {}
        }
    }
}

/// A line `Name: value kB` of /proc/PID/status, in KiB.
fn status_field(pid: u32, field: &str) -> Result<String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
        .with_context(|| format!("no {field} in {path}"))
}

/// Resident memory of `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let value = status_field(pid, "VmRSS")?;
    value
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("VmRSS of {pid} is `{value}`"))
}

/// Effective capabilities of `pid` as a bit mask (`CapEff`).
pub fn effective_caps(pid: u32) -> Result<u64> {
    let value = status_field(pid, "CapEff")?;
    u64::from_str_radix(&value, 16).with_context(|| format!("CapEff of {pid} is `{value}`"))
}

/// Capability numbers from linux/capability.h, by the names `setpriv` and
/// systemd use (without `CAP_`, lower case).
pub fn cap_bit(name: &str) -> Result<u32> {
    Ok(match name {
        "dac_override" => 1,
        "dac_read_search" => 2,
        "net_admin" => 12,
        "sys_admin" => 21,
        "sys_resource" => 24,
        "perfmon" => 38,
        "bpf" => 39,
        _ => bail!("unknown capability {name}"),
    })
}

/// `setpriv` flags that leave exactly `caps` (e.g. `["bpf", "net_admin"]`)
/// in every set, as systemd's `CapabilityBoundingSet=` plus
/// `AmbientCapabilities=` do. As root (`uid` None) they also set the
/// `noroot` secure bits, as the unit's `SecureBits=noroot-locked` does, so
/// that uid 0 gets no capability from being uid 0; with `uid`, they switch
/// to that user and group and drop supplementary groups. `setpriv` execs,
/// so the daemon keeps the pid the test started.
pub fn setpriv(caps: &[&str], uid: Option<u32>) -> Vec<OsString> {
    let set: String = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    let mut args: Vec<OsString> = vec![
        "setpriv".into(),
        format!("--inh-caps={set}").into(),
        format!("--ambient-caps={set}").into(),
        format!("--bounding-set={set}").into(),
    ];
    match uid {
        None => args.push("--securebits=+noroot,+noroot_locked".into()),
        Some(uid) => {
            args.push(format!("--reuid={uid}").into());
            args.push(format!("--regid={uid}").into());
            args.push("--clear-groups".into());
        }
    }
    args
}

/// A response: status code and everything after the head.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// How long a scrape may take; the daemon is on loopback, only a hung
/// server comes near it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET path` from `to` inside `ns`, one request per connection.
pub fn http_get(ns: &Netns, to: SocketAddr, path: &str) -> Result<Reply> {
    let mut stream = connect(ns, to)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response to GET {path}"))?;
    parse_reply(&raw).with_context(|| {
        format!(
            "bad response to GET {path}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// A TCP connection to `to` made inside `ns`, with read and write
/// timeouts so that a hung server fails the test instead of hanging it.
pub fn connect(ns: &Netns, to: SocketAddr) -> Result<TcpStream> {
    let stream = ns
        .enter(|| TcpStream::connect_timeout(&to, HTTP_TIMEOUT))?
        .with_context(|| format!("failed to connect to {to} in {}", ns.name()))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    Ok(stream)
}

pub fn parse_reply(raw: &[u8]) -> Result<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no end of head")?;
    let status = head
        .split(' ')
        .nth(1)
        .context("no status code")?
        .parse()
        .context("bad status code")?;
    Ok(Reply {
        status,
        body: body.to_owned(),
    })
}

/// Samples of metric `name` in a Prometheus text exposition, as (labels,
/// value). Enough for aliasstat's own label values, which hold no quotes.
pub fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once('}')?,
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            let labels = labels
                .split(',')
                .filter(|kv| !kv.is_empty())
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.trim_matches('"').to_owned()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// `aliasstat_program_attached` of `iface`, by direction (`receive`,
/// `transmit`).
pub fn attached(metrics: &str, iface: &str) -> BTreeMap<String, f64> {
    samples(metrics, "aliasstat_program_attached")
        .into_iter()
        .filter(|(labels, _)| labels.get("interface").map(String::as_str) == Some(iface))
        .map(|(mut labels, value)| (labels.remove("direction").unwrap_or_default(), value))
        .collect()
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most
/// `within`; the error says what was last seen. For conditions the daemon
/// reaches on its own schedule (a link event, the 5 s reconcile tick).
pub fn poll<T>(
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>>,
    last_seen: impl Fn() -> String,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {within:?}; last seen: {}", last_seen());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// `<binary> dump --json` inside `ns`: `dump` with another binary than
/// the one under test, e.g. the upgraded one, which reads both layouts.
pub fn dump_with(binary: &Path, ns: &Netns, bpffs: &BpfDir) -> Result<Snapshot> {
    let json = cmd::run(
        ns.exec(binary)
            .args(["dump", "--json", "--bpffs"])
            .arg(bpffs.path()),
    )?;
    Snapshot::parse(&json).with_context(|| {
        format!(
            "unexpected `{} dump --json` output: {json}",
            binary.display()
        )
    })
}

/// Creates `veth`'s pair again with the same names and MACs after it was
/// deleted, brings both ends up, and adds `client`/`server` addresses and
/// static neighbours as before: an interface re-created by an operator or
/// an orchestrator, with a new ifindex.
pub fn recreate_veth(veth: &Veth, client: &[(IpAddr, u8)], server: &[(IpAddr, u8)]) -> Result<()> {
    veth.client.ns.ip(&[
        "link",
        "add",
        &veth.client.ifname,
        "address",
        &mac_str(veth.client.mac),
        "type",
        "veth",
        "peer",
        "name",
        &veth.server.ifname,
        "address",
        &mac_str(veth.server.mac),
        "netns",
        veth.server.ns.name(),
    ])?;
    for host in [&veth.client, &veth.server] {
        host.ns.ip(&["link", "set", &host.ifname, "up"])?;
    }
    add_addresses(veth, client, server)
}

/// Adds `client` and `server` addresses (with prefix lengths) to the two
/// ends and makes each end's known to the other as static neighbours.
pub fn add_addresses(veth: &Veth, client: &[(IpAddr, u8)], server: &[(IpAddr, u8)]) -> Result<()> {
    for &(addr, len) in client {
        veth.client.add_addr(addr, len)?;
    }
    for &(addr, len) in server {
        veth.server.add_addr(addr, len)?;
    }
    let only = |list: &[(IpAddr, u8)]| list.iter().map(|&(a, _)| a).collect::<Vec<_>>();
    veth.know_each_other(&only(client), &only(server))
}

/// Puts `client` and `server` on the two ends (a /24 each), routes `block`
/// from the client through the server, and configures every one of
/// `aliases` (inside `block`) as a /32 on the server's end in one
/// `ip -batch`: one route and one neighbour, so no ARP runs per address.
pub fn alias_veth(
    veth: &Veth,
    (client, server): (IpAddr, IpAddr),
    block: &str,
    aliases: impl IntoIterator<Item = IpAddr>,
) -> Result<()> {
    veth.client.add_addr(client, 24)?;
    veth.server.add_addr(server, 24)?;
    veth.know_each_other(&[client], &[server])?;
    veth.server.ns.ip(&["link", "set", "lo", "up"])?;
    veth.client
        .ns
        .ip(&["route", "add", block, "via", &server.to_string()])?;
    let mut batch = String::new();
    for a in aliases {
        writeln!(batch, "addr add {a}/32 dev {}", veth.server.ifname)?;
    }
    ip_batch(&veth.server.ns, &batch)
}

/// Runs `ip -n <ns> -batch -` with `commands` on stdin: a thousand
/// address changes in one process, as fast as the kernel takes them.
pub fn ip_batch(ns: &Netns, commands: &str) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["-n", ns.name(), "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("failed to start `ip -batch -`")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(commands.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "`ip -n {} -batch -` failed ({}): {}",
        ns.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_samples_by_name_and_labels() {
        let text = "# HELP aliasstat_program_attached x\n\
aliasstat_program_attached{direction=\"receive\",hook=\"tc\",interface=\"lab-srv\"} 1\n\
aliasstat_program_attached{direction=\"transmit\",hook=\"tc\",interface=\"lab-srv\"} 0\n\
aliasstat_program_attachedness 7\n\
aliasstat_up 1\n";
        let got = attached(text, "lab-srv");
        assert_eq!(
            got,
            BTreeMap::from([("receive".into(), 1.0), ("transmit".into(), 0.0)])
        );
        assert_eq!(samples(text, "aliasstat_up"), vec![(BTreeMap::new(), 1.0)]);
        assert!(attached(text, "other").is_empty());
    }

    #[test]
    fn setpriv_keeps_exactly_the_listed_caps() {
        let args: Vec<String> = setpriv(&["bpf", "perfmon"], Some(65534))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "setpriv",
                "--inh-caps=-all,+bpf,+perfmon",
                "--ambient-caps=-all,+bpf,+perfmon",
                "--bounding-set=-all,+bpf,+perfmon",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]
        );
        assert_eq!(
            setpriv(&[], None).last().unwrap(),
            "--securebits=+noroot,+noroot_locked"
        );
    }

    #[test]
    fn parses_a_reply() {
        let r = parse_reply(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_str()), (431, ""));
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
