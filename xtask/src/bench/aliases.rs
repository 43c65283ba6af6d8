//! N documented aliases really configured on a veth, one datagram each:
//! the scrape (plain and gzip) against the batched map read and against
//! node_exporter's textfile collector serving the same series from a file;
//! memory, alone and under 200 concurrent scrapes; and `check`,
//! `aliases --json`, a SIGHUP reload and start-up against the kernel's own
//! address dump, `ip -j addr show`, in the same namespace.

use std::{
    ffi::OsStr,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use lab::{BpfDir, Veth, link::Ipv6, scratch::Scratch, stress};

use super::{
    Plan, Sweep, Verdict,
    scrape::{Daemon, get},
    stats::{count, median, mib, seconds},
    tools::Tools,
};
use crate::cmd;

const LISTEN: &str = "127.0.0.1:9864";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const NODE_LISTEN: &str = "127.0.0.1:9100";
const CONCURRENT: usize = 200;
const PORT: u16 = 5300;

pub struct Row {
    pub aliases: usize,
    pub scrape: f64,
    pub scrape_gzip: f64,
    /// The daemon's CPU time per plain scrape, mean over the trials.
    pub scrape_cpu: f64,
    pub body_bytes: usize,
    pub gzip_bytes: usize,
    pub read_batched: f64,
    /// The batched read's CPU time, median.
    pub read_cpu: f64,
    pub node: Option<(f64, f64)>,
    pub rss: f64,
    /// VmHWM before and after 200 concurrent scrapes.
    pub peak: (f64, f64),
    pub ip_dump: f64,
    pub check: f64,
    pub aliases_json: f64,
    pub reload: f64,
    pub start_empty: f64,
    pub start_full: f64,
}

pub fn run(tools: &Tools, plan: &Plan) -> Result<Sweep<Row>> {
    Sweep::run(plan, &plan.alias_sizes, "aliases", |n| size(tools, plan, n))
}

/// The i-th alias: 10.64.0.1 onwards, off the veth's own subnet, reached
/// through one route so that no ARP runs per address.
fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(10, 64, 0, 1)) + i as u32,
    ))
}

fn configure(veth: &Veth, n: usize) -> Result<(IpAddr, IpAddr)> {
    let (client, server): (IpAddr, IpAddr) = ("192.168.77.1".parse()?, "192.168.77.2".parse()?);
    stress::alias_veth(veth, (client, server), "10.64.0.0/10", (0..n).map(address))?;
    Ok((client, server))
}

/// Every configured address documented, so `check` finds no drift.
fn alias_file(n: usize, server: IpAddr) -> String {
    let mut file = format!("[[alias]]\nname = \"primary\"\naddress = \"{server}\"\n");
    for i in 0..n {
        let _ = write!(
            file,
            "[[alias]]\nname = \"vhost-{i}\"\naddress = \"{}\"\nowner = \"customer-{i}\"\npurpose = \"TLS vhost\"\n",
            address(i)
        );
    }
    file
}

/// Median seconds of `trials` runs of `f`.
fn timed(trials: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..trials {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed().as_secs_f64());
    }
    median(&times).context("no trials")
}

fn size(tools: &Tools, plan: &Plan, n: usize) -> Result<Row> {
    let veth = Veth::new(Ipv6::Off)?;
    let (client, server) = configure(&veth, n)?;
    let ns = &veth.server.ns;
    let ip_dump = timed(plan.trials, || {
        cmd::stdout(Command::new("ip").args(["-n", ns.name(), "-j", "addr", "show"])).map(drop)
    })?;
    let dir = Scratch::new("bench-aliases")?;
    let empty = dir.write("empty.toml", "")?;
    let full = dir.write("aliases.toml", &alias_file(n, server))?;
    let pins = BpfDir::new("bench")?;
    let capacity = u32::try_from(n)? + 1024;
    let start = |file: &std::path::Path| -> Result<(Daemon, f64)> {
        let started = Instant::now();
        let d = Daemon::start_with(
            tools,
            &veth,
            &pins,
            capacity,
            &[OsStr::new("--config"), file.as_os_str()],
        )?;
        Ok((d, started.elapsed().as_secs_f64()))
    };
    let mut start_empty = Vec::new();
    let mut start_full = Vec::new();
    for _ in 0..plan.trials {
        let (d, t) = start(&empty)?;
        d.stop()?;
        start_empty.push(t);
    }
    for _ in 1..plan.trials {
        let (d, t) = start(&full)?;
        d.stop()?;
        start_full.push(t);
    }
    let (daemon, t) = start(&full)?;
    start_full.push(t);
    send_one_each(&veth, client, n)?;

    let addr: SocketAddr = LISTEN.parse()?;
    let (_, _, plain) = get(ns, addr, "/metrics", false)?;
    let body = String::from_utf8(plain).context("a non-UTF-8 scrape")?;
    let cpu_before = daemon.cpu_seconds()?;
    let scrape = timed(plan.trials, || get(ns, addr, "/metrics", false).map(drop))?;
    let scrape_cpu = (daemon.cpu_seconds()? - cpu_before) / plan.trials as f64;
    let (_, head, gz) = get(ns, addr, "/metrics", true)?;
    ensure!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "no gzip: {head}"
    );
    let scrape_gzip = timed(plan.trials, || get(ns, addr, "/metrics", true).map(drop))?;
    let (rss, before) = daemon.memory()?;
    concurrent_scrapes(&veth, addr)?;
    let (_, after) = daemon.memory()?;

    let reload = timed(plan.trials, || {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(daemon.pid() as libc::pid_t, libc::SIGHUP) };
        daemon.wait_for("SIGHUP: reloaded", Duration::from_secs(60))
    })?;
    let binary = &tools.aliasstat;
    let check = timed(plan.trials, || {
        let out = ns
            .exec(binary)
            .args(["check", "--config"])
            .arg(&full)
            .stdout(Stdio::null())
            .status()?;
        ensure!(out.success(), "check found drift: {out}");
        Ok(())
    })?;
    let aliases_json = timed(plan.trials, || {
        cmd::stdout(
            ns.exec(binary)
                .args(["aliases", "--json", "--bpffs"])
                .arg(pins.path())
                .arg("--config")
                .arg(&full),
        )
        .map(drop)
    })?;
    daemon.stop()?;
    let read = tools.read_map(pins.path(), plan.trials)?;
    let node = node_exporter(&veth, &dir, &body, plan.trials)?;
    Ok(Row {
        aliases: n,
        scrape,
        scrape_gzip,
        scrape_cpu,
        body_bytes: body.len(),
        gzip_bytes: gz.len(),
        read_batched: read.median("batched")?,
        read_cpu: read.median("batched_cpu")?,
        node,
        rss,
        peak: (before, after),
        ip_dump,
        check,
        aliases_json,
        reload,
        start_empty: median(&start_empty).context("no starts")?,
        start_full: median(&start_full).context("no starts")?,
    })
}

/// One datagram to each alias, each waited for at a wildcard socket, so
/// every alias has exactly one packet.
fn send_one_each(veth: &Veth, client: IpAddr, n: usize) -> Result<()> {
    let from = veth
        .client
        .ns
        .enter(|| UdpSocket::bind(SocketAddr::new(client, 40000)))??;
    let sink = veth
        .server
        .ns
        .enter(|| UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), PORT)))??;
    sink.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 16];
    for i in 0..n {
        from.send_to(b"x", SocketAddr::new(address(i), PORT))?;
        sink.recv_from(&mut buf)
            .with_context(|| format!("the datagram to {} did not arrive", address(i)))?;
    }
    Ok(())
}

fn concurrent_scrapes(veth: &Veth, addr: SocketAddr) -> Result<()> {
    std::thread::scope(|s| {
        let scrapes: Vec<_> = (0..CONCURRENT)
            .map(|_| s.spawn(|| get(&veth.server.ns, addr, "/metrics", false).map(drop)))
            .collect();
        scrapes
            .into_iter()
            .try_for_each(|h| h.join().expect("a scrape thread panicked"))
    })
}

/// node_exporter's textfile collector serving aliasstat's families from a
/// file: (plain, gzip) median scrape seconds; `None` without the package.
fn node_exporter(
    veth: &Veth,
    dir: &Scratch,
    body: &str,
    trials: usize,
) -> Result<Option<(f64, f64)>> {
    if !std::path::Path::new(NODE_EXPORTER).is_file() {
        println!("  no {NODE_EXPORTER}: install prometheus-node-exporter for the yardstick");
        return Ok(None);
    }
    // Its own process_* families would clash with aliasstat's.
    let mut prom = String::new();
    let mut skip = false;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            skip = rest.starts_with("process_");
        }
        if !skip {
            prom.push_str(line);
            prom.push('\n');
        }
    }
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir_all(&textfiles)?;
    std::fs::write(textfiles.join("aliasstat.prom"), prom)?;
    let mut child = veth
        .server
        .ns
        .exec(NODE_EXPORTER)
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!(
            "--collector.textfile.directory={}",
            textfiles.display()
        ))
        .arg(format!("--web.listen-address={NODE_LISTEN}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start node_exporter")?;
    let addr: SocketAddr = NODE_LISTEN.parse()?;
    let measured = (|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&veth.server.ns, addr, "/metrics", false).is_err() {
            ensure!(Instant::now() < deadline, "node_exporter did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        let plain = timed(trials, || {
            get(&veth.server.ns, addr, "/metrics", false).map(drop)
        })?;
        let gzip = timed(trials, || {
            get(&veth.server.ns, addr, "/metrics", true).map(drop)
        })?;
        Ok((plain, gzip))
    })();
    let _ = child.kill();
    let _ = child.wait();
    measured.map(Some)
}

impl Sweep<Row> {
    pub fn table(&self) -> String {
        let mut t = String::from(
            "| aliases | scrape plain | scrape gzip | /metrics size (gzip) | map read, batched | CPU: scrape / batched read | node_exporter textfile plain / gzip | RSS after scrapes | peak before → after 200 concurrent scrapes |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let node = r.node.map_or("-".to_owned(), |(p, g)| {
                format!("{} / {}", seconds(p), seconds(g))
            });
            let _ = writeln!(
                t,
                "| {} | **{}** | **{}** | {} ({}) | {} | {} / {} = {:.2}× | {node} | {} | {} → {} |",
                count(r.aliases as f64),
                seconds(r.scrape),
                seconds(r.scrape_gzip),
                mib(r.body_bytes as f64),
                mib(r.gzip_bytes as f64),
                seconds(r.read_batched),
                seconds(r.scrape_cpu),
                seconds(r.read_cpu),
                r.scrape_cpu / r.read_cpu,
                mib(r.rss),
                mib(r.peak.0),
                mib(r.peak.1),
            );
        }
        t.push_str(
            "\n| aliases | `ip -j addr show` | `check` | `aliases --json` | SIGHUP reload | start-up, empty file → this file |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} → {} |",
                count(r.aliases as f64),
                seconds(r.ip_dump),
                seconds(r.check),
                seconds(r.aliases_json),
                seconds(r.reload),
                seconds(r.start_empty),
                seconds(r.start_full),
            );
        }
        let _ = writeln!(t, "\nMedian of {} trials.", self.trials);
        t
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        let row = |n| self.rows.iter().find(|r| r.aliases == n);
        let Some(r) = row(10_000) else { return v };
        if let Some((plain, gzip)) = r.node {
            v.push(Verdict::at_most(
                "scrape of 10k aliases / node_exporter textfile, plain",
                r.scrape / plain,
                0.25,
                "×",
            ));
            v.push(Verdict::at_most(
                "scrape of 10k aliases / node_exporter textfile, gzip",
                r.scrape_gzip / gzip,
                0.25,
                "×",
            ));
        }
        v.push(Verdict::at_most(
            "scrape of 10k aliases / batched map read",
            r.scrape / r.read_batched,
            2.0,
            "×",
        ));
        v.push(Verdict::at_most(
            "scrape of 10k aliases / batched map read, CPU time",
            r.scrape_cpu / r.read_cpu,
            2.0,
            "×",
        ));
        v.push(Verdict::at_most(
            "RSS at 10k aliases, after scrapes",
            r.rss / (1024.0 * 1024.0),
            20.0,
            "MiB",
        ));
        v.push(Verdict::at_most(
            "peak RSS rise from 200 concurrent scrapes, 10k aliases",
            (r.peak.1 / r.peak.0 - 1.0) * 100.0,
            50.0,
            "%",
        ));
        if let Some(k) = row(1_000) {
            v.push(Verdict::at_most(
                "scrape of 10k aliases / scrape of 1k",
                r.scrape / k.scrape,
                12.0,
                "×",
            ));
            // The same target by the daemon's CPU time, which a loaded
            // machine blurs far less than wall time at 1k's few ms.
            v.push(Verdict::at_most(
                "scrape of 10k aliases / scrape of 1k, daemon CPU",
                r.scrape_cpu / k.scrape_cpu,
                12.0,
                "×",
            ));
        }
        for (what, t) in [
            ("check", r.check),
            ("aliases --json", r.aliases_json),
            ("SIGHUP reload", r.reload),
            (
                "start-up added by 10k aliases",
                (r.start_full - r.start_empty).max(0.0),
            ),
        ] {
            v.push(Verdict::at_most(
                &format!("{what} at 10k aliases / ip -j addr show"),
                t / r.ip_dump,
                3.0,
                "×",
            ));
        }
        v
    }
}
