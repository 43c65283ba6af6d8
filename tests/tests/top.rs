//! `aliasstat top` end to end (issue 5): a daemon counts UDP sent at known
//! rates to two documented aliases and an undocumented address, and
//! `aliasstat top` runs in a tmux pane, whose screen is read back with
//! `tmux capture-pane` and driven with `tmux send-keys`.
//!
//! Needs root and tmux: run with `cargo xtask test -- top`, or `cargo test
//! --release -p lab --test top` with `ALIASSTAT_BIN` set.

use std::{
    net::{IpAddr, SocketAddr},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use lab::{
    BpfDir, Daemon, Netns, Veth, cmd,
    daemon::{Config, binary},
    frames::{UDP_HLEN, ip_header_len},
    link::Ipv6,
    prereq, prometheus,
    scratch::Scratch,
    traffic,
};

const CLIENT: &str = "10.74.0.1";
const WEB: &str = "10.74.0.2";
const MAIL: &str = "10.74.0.3";
const STRAY: &str = "10.74.0.4";
const PORT: u16 = 5300;
const PAYLOAD: usize = 1000;
/// Packets per second to each address; different enough that the order
/// by rate is unambiguous.
const WEB_PPS: u32 = 200;
const MAIL_PPS: u32 = 50;
const STRAY_PPS: u32 = 10;
/// Rates are measured over real time by a process the test does not pace.
const TOLERANCE: f64 = 0.10;
/// A bound on waiting for the screen to show what a step expects; a pass
/// takes a few refreshes.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);

const ALIASES: &str = r#"
[[alias]]
name = "web"
address = "10.74.0.2"
owner = "team-web"
interface = "lab-srv"

[[alias]]
name = "mail"
address = "10.74.0.3"
owner = "team-mail"
interface = "lab-srv"
"#;

#[test]
fn top_shows_rates_sorts_and_filters() -> Result<()> {
    prereq::require()?;
    let tmux = Command::new("tmux").arg("-V").output();
    ensure!(
        tmux.is_ok_and(|o| o.status.success()),
        "tmux is not installed: `cargo xtask setup` installs it"
    );

    let veth = Veth::new(Ipv6::Off)?;
    let (srv, cli) = (&veth.server, &veth.client);
    let client: IpAddr = CLIENT.parse()?;
    let servers: [IpAddr; 3] = [WEB.parse()?, MAIL.parse()?, STRAY.parse()?];
    cli.add_addr(client, 24)?;
    for addr in servers {
        srv.add_addr(addr, 24)?;
    }
    veth.know_each_other(&[client], &servers)?;
    // top reaches the daemon over the server namespace's loopback, which
    // the daemon does not count on.
    srv.ns.ip(&["link", "set", "lo", "up"])?;

    let dir = Scratch::new("top")?;
    let config = dir.write("aliases.toml", ALIASES)?;
    let pins = BpfDir::new("top")?;
    let listen = SocketAddr::from(([127, 0, 0, 1], prometheus::free_port(&srv.ns)?));
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        listen: Some(listen),
        ..Config::new(&srv.ns, &pins, &srv.ifname)
    })?;

    // Bound sockets, never read: a full buffer drops in silence, where a
    // closed port would answer with ICMP and add transmit traffic.
    let _sinks = servers
        .iter()
        .map(|&a| traffic::udp_socket(&srv.ns, SocketAddr::new(a, PORT)))
        .collect::<Result<Vec<_>>>()?;
    let sender = Sender::start(
        &cli.ns,
        client,
        &[
            (SocketAddr::new(servers[0], PORT), WEB_PPS),
            (SocketAddr::new(servers[1], PORT), MAIL_PPS),
            (SocketAddr::new(servers[2], PORT), STRAY_PPS),
        ],
    )?;

    let bin = binary()?;
    let url = format!("http://{listen}");
    let pane = Tmux::start(&[
        "ip",
        "netns",
        "exec",
        srv.ns.name(),
        bin.to_str().context("non-UTF-8 binary path")?,
        "top",
        "--url",
        &url,
    ])?;

    // IP-layer bytes, as counted: header, UDP header, payload.
    let packet = (ip_header_len(servers[0]) + UDP_HLEN + PAYLOAD) as f64;
    let bits = |pps: u32| f64::from(pps) * packet * 8.0;

    // The default view: rates in bits, sorted by total, largest first.
    let screen = pane.wait_for("rates of web, mail and the stray", |s| {
        ["web", "mail", STRAY]
            .iter()
            .all(|n| s.row(n).is_some_and(|r| r.rx.is_some()))
    })?;
    println!("{}", screen.text.trim_end());
    ensure!(
        screen.text.contains(&format!("· {url} ·")),
        "no URL in the header"
    );
    ensure!(
        screen.text.contains("counting on lab-srv (tc rx, tc tx)"),
        "no attachments in the header"
    );
    let web = screen.row("web").expect("waited for");
    let mail = screen.row("mail").expect("waited for");
    let stray = screen.row(STRAY).expect("waited for");
    check_row(&web, WEB, "documented", "team-web")?;
    check_row(&mail, MAIL, "documented", "team-mail")?;
    check_row(&stray, STRAY, "undocumented", "-")?;
    within("web rx bit/s", web.rx, bits(WEB_PPS))?;
    within("mail rx bit/s", mail.rx, bits(MAIL_PPS))?;
    within("web tx bit/s", web.tx, 0.0)?;
    ensure!(
        !web.marked && !mail.marked && stray.marked,
        "only the undocumented address with traffic is marked `!`"
    );
    screen.order(&["web", "mail", STRAY])?;

    // Name order: aliases A-Z, then bare addresses.
    pane.keys(&["n"])?;
    pane.wait_for("name order", |s| s.order(&["mail", "web", STRAY]).is_ok())?;
    // By rx, then inverted: smallest first.
    pane.keys(&["r"])?;
    pane.wait_for("rx order", |s| s.order(&["web", "mail", STRAY]).is_ok())?;
    pane.keys(&["i"])?;
    pane.wait_for("inverted rx order", |s| {
        s.order(&[STRAY, "mail", "web"]).is_ok()
    })?;

    // Packets per second.
    pane.keys(&["b"])?;
    let screen = pane.wait_for("packet rates", |s| s.text.contains("pkt/s"))?;
    println!("{}", screen.text.trim_end());
    for (name, pps) in [("web", WEB_PPS), ("mail", MAIL_PPS)] {
        let row = screen.row(name).context("row gone")?;
        within(&format!("{name} rx pkt/s"), row.rx, f64::from(pps))?;
    }

    // The filter hides what does not match, and Esc brings it back.
    pane.keys(&["/"])?;
    pane.literal("mail")?;
    pane.keys(&["Enter"])?;
    let screen = pane.wait_for("only mail", |s| {
        s.row("mail").is_some() && s.row("web").is_none() && s.row(STRAY).is_none()
    })?;
    println!("{}", screen.text.trim_end());
    ensure!(
        screen.text.contains("filter \"mail\""),
        "filter not in header"
    );
    pane.keys(&["Escape"])?;
    pane.wait_for("every row again", |s| s.row("web").is_some())?;

    // A daemon that goes away is a status line, and one that comes back
    // is read again without a key pressed. The maps stay pinned, so the
    // restarted daemon carries on from the same counts.
    let restart = Config {
        config: Some(&config),
        listen: Some(listen),
        ..Config::new(&srv.ns, &pins, &srv.ifname)
    };
    daemon.stop()?;
    let screen = pane.wait_for("the daemon reported gone", |s| {
        s.text.contains("daemon unreachable")
    })?;
    println!("{}", screen.text.trim_end());
    let daemon = Daemon::start(&restart)?;
    let screen = pane.wait_for("rows read again", |s| {
        !s.text.contains("daemon unreachable") && s.row("web").is_some_and(|r| r.rx > Some(0.0))
    })?;
    println!("{}", screen.text.trim_end());

    // Without a terminal, top prints one interval's rates and exits.
    let once = |extra: &[&str]| {
        cmd::run(
            srv.ns
                .exec(&bin)
                .args(["top", "--url", &url, "--interval", "2s"])
                .args(extra),
        )
    };
    let table = once(&[])?;
    println!("{table}");
    ensure!(
        table.starts_with("NAME") && table.lines().nth(1).is_some_and(|l| l.starts_with("web ")),
        "`top` without a terminal: expected a table with web first"
    );
    let json: serde_json::Value = serde_json::from_str(&once(&["--json"])?)?;
    for (i, (name, pps)) in [("web", WEB_PPS), ("mail", MAIL_PPS)]
        .into_iter()
        .enumerate()
    {
        let alias = &json["aliases"][i];
        ensure!(
            alias["alias"] == name,
            "`top --json`: {name} is not row {i}: {json}"
        );
        within(
            &format!("--json {name} rx bits_per_second"),
            alias["rx"]["bits_per_second"].as_f64(),
            bits(pps),
        )?;
        within(
            &format!("--json {name} rx packets_per_second"),
            alias["rx"]["packets_per_second"].as_f64(),
            f64::from(pps),
        )?;
    }

    // q leaves the alternate screen and exits 0.
    pane.keys(&["q"])?;
    pane.wait_for("top to exit", |s| s.text.contains(EXITED))?;
    let screen = pane.capture()?;
    ensure!(
        screen.text.contains(&format!("{EXITED} 0")),
        "top did not exit cleanly:\n{}",
        screen.text
    );

    sender.finish()?;
    daemon.stop()
}

fn check_row(row: &ScreenRow, address: &str, state: &str, owner: &str) -> Result<()> {
    ensure!(
        (row.address.as_str(), row.state.as_str(), row.owner.as_str()) == (address, state, owner),
        "row {row:?}: expected {address} {state} {owner}"
    );
    Ok(())
}

fn within(what: &str, got: Option<f64>, want: f64) -> Result<()> {
    let got = got.with_context(|| format!("{what}: no rate shown"))?;
    let ok = if want == 0.0 {
        got == 0.0
    } else {
        (got - want).abs() <= want * TOLERANCE
    };
    println!(
        "  {what}: shown {got:.0}, sent {want:.0} ({:+.1}%)",
        if want == 0.0 {
            0.0
        } else {
            (got / want - 1.0) * 100.0
        }
    );
    ensure!(
        ok,
        "{what}: shown {got}, sent {want}, more than {:.0}% apart",
        TOLERANCE * 100.0
    );
    Ok(())
}

/// Sends `PAYLOAD`-byte datagrams from `from` to each target at its own
/// rate, on a schedule of absolute times so that a late wake-up is made up
/// for and the average rate is exact.
struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Sender {
    fn start(ns: &Netns, from: IpAddr, targets: &[(SocketAddr, u32)]) -> Result<Self> {
        let socket = traffic::udp_socket(ns, SocketAddr::new(from, 0))?;
        let stop = Arc::new(AtomicBool::new(false));
        let targets = targets.to_vec();
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || -> Result<()> {
                let payload = vec![0xa5; PAYLOAD];
                let start = Instant::now();
                let due = |(_, pps): (SocketAddr, u32), sent: u32| {
                    start + Duration::from_secs(1) * sent / pps
                };
                let mut sent = vec![0u32; targets.len()];
                while !stop.load(Ordering::Relaxed) {
                    let (i, when) = targets
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| (i, due(t, sent[i])))
                        .min_by_key(|&(_, when)| when)
                        .expect("at least one target");
                    thread::sleep(when.saturating_duration_since(Instant::now()));
                    let to = targets[i].0;
                    socket
                        .send_to(&payload, to)
                        .with_context(|| format!("failed to send to {to}"))?;
                    sent[i] += 1;
                }
                Ok(())
            })
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sending and reports whether every send succeeded.
    fn finish(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().expect("joined once").join() {
            Ok(sent) => sent,
            Err(_) => bail!("the sender thread panicked"),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Printed by the pane's shell when top exits, followed by its status; the
/// shell then stays, so a crash leaves its message on the screen.
const EXITED: &str = "aliasstat top exited with status";

/// A detached tmux session of 200×50 on a server of its own (`-L`), so the
/// test neither sees nor touches anyone's tmux. Dropping it kills the
/// session, and the server with its last session.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(command: &[&str]) -> Result<Self> {
        let name = format!("aslab-top-{}", std::process::id());
        let tmux = Self {
            socket: name.clone(),
            session: name,
        };
        let script = format!("\"$@\"; echo \"{EXITED} $?\"; exec sleep 600");
        cmd::run(
            tmux.command()
                .args([
                    "new-session",
                    "-d",
                    "-s",
                    &tmux.session,
                    "-x",
                    "200",
                    "-y",
                    "50",
                ])
                .args(["sh", "-c", &script, "sh"])
                .args(command),
        )?;
        Ok(tmux)
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        // No user configuration: the pane is what the test says.
        c.args(["-f", "/dev/null", "-L", &self.socket]);
        c
    }

    fn capture(&self) -> Result<Screen> {
        let text = cmd::run(
            self.command()
                .args(["capture-pane", "-p", "-t", &self.session]),
        )?;
        Ok(Screen { text })
    }

    /// Named keys (`Enter`, `Escape`) or single characters.
    fn keys(&self, keys: &[&str]) -> Result<()> {
        cmd::run(
            self.command()
                .args(["send-keys", "-t", &self.session])
                .args(keys),
        )?;
        Ok(())
    }

    /// `text` typed as it is, never read as key names.
    fn literal(&self, text: &str) -> Result<()> {
        cmd::run(
            self.command()
                .args(["send-keys", "-t", &self.session, "-l", text]),
        )?;
        Ok(())
    }

    /// Polls the screen until `ready` holds; fails with the last screen.
    fn wait_for(&self, what: &str, ready: impl Fn(&Screen) -> bool) -> Result<Screen> {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.capture()?;
            if ready(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                bail!(
                    "waited {SCREEN_TIMEOUT:?} for {what}; the screen:\n{}",
                    screen.text
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(self.command().args(["kill-session", "-t", &self.session])) {
            eprintln!("top test: leaking tmux session {}: {e:#}", self.session);
        }
    }
}

/// What `capture-pane -p` printed.
struct Screen {
    text: String,
}

#[derive(Debug)]
struct ScreenRow {
    /// The `!` in the first column.
    marked: bool,
    name: String,
    address: String,
    state: String,
    owner: String,
    /// In the unit on screen (bit/s or pkt/s); None for `-`.
    rx: Option<f64>,
    tx: Option<f64>,
}

impl Screen {
    /// The table's rows, top to bottom: the lines after the header that
    /// starts with `NAME`, up to the first blank one.
    fn rows(&self) -> Vec<ScreenRow> {
        self.text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("NAME"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(parse_row)
            .collect()
    }

    fn row(&self, name: &str) -> Option<ScreenRow> {
        self.rows().into_iter().find(|r| r.name == name)
    }

    /// Fails unless `names` appear in this order (other rows may be
    /// between them).
    fn order(&self, names: &[&str]) -> Result<()> {
        let shown: Vec<String> = self.rows().into_iter().map(|r| r.name).collect();
        let positions: Vec<Option<usize>> = names
            .iter()
            .map(|n| shown.iter().position(|s| s == n))
            .collect();
        ensure!(
            positions.iter().all(Option::is_some) && positions.is_sorted(),
            "expected the rows in the order {names:?}, got {shown:?}"
        );
        Ok(())
    }
}

/// `! name address interface state owner RX TX RX-TOTAL TX-TOTAL`, where a
/// rate is `1.64 Mbit/s` or `-`.
fn parse_row(line: &str) -> Option<ScreenRow> {
    let marked = line.starts_with('!');
    let mut words = line.trim_start_matches('!').split_whitespace();
    let name = words.next()?.to_owned();
    let address = words.next()?.to_owned();
    let _interface = words.next()?;
    let state = words.next()?.to_owned();
    let owner = words.next()?.to_owned();
    let mut rate = || -> Option<Option<f64>> {
        let value = words.next()?;
        if value == "-" {
            return Some(None);
        }
        Some(Some(value.parse::<f64>().ok()? * prefix(words.next()?)?))
    };
    Some(ScreenRow {
        marked,
        name,
        address,
        state,
        owner,
        rx: rate()?,
        tx: rate()?,
    })
}

/// The multiplier of `kbit/s`, `Mpkt/s` and the like.
fn prefix(unit: &str) -> Option<f64> {
    let scale = match unit
        .strip_suffix("bit/s")
        .or_else(|| unit.strip_suffix("pkt/s"))?
    {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some(scale)
}
