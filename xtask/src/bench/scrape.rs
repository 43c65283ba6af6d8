//! Userspace cost: a real `aliasstat run` whose pinned address map is
//! filled with N entries, scraped over HTTP; its memory; and one read of
//! the map, batched and per key, by `probe read`.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    process::{Child, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use lab::{BpfDir, Veth, link::Ipv6};

use super::{
    Plan, Sweep, Verdict,
    stats::{count, median, mib, seconds},
    tools::{Tools, arg},
};

/// The daemon listens on loopback inside its namespace.
const LISTEN: &str = "127.0.0.1:9864";
/// Start-up includes the verifier and, for a large map, creating it.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Room left in the map for whatever the veth sees besides the filler.
const SLACK: u32 = 1024;

pub struct Row {
    pub entries: u32,
    /// Client-side wall time of `GET /metrics`, median.
    pub scrape: f64,
    /// The daemon's own `aliasstat_scrape_duration_seconds` (the collector,
    /// before text encoding), median.
    pub collect: f64,
    pub body_bytes: usize,
    pub read_batched: f64,
    /// The batched read's CPU time, median.
    pub read_cpu: f64,
    pub read_per_key: f64,
    /// The daemon's CPU time per scrape (all its threads), mean over the
    /// trials: unlike wall time, hardly inflated by a loaded machine.
    pub cpu: f64,
    /// VmRSS after the scrapes, and its peak (VmHWM).
    pub rss: f64,
    pub rss_idle: f64,
    pub rss_peak: f64,
}

pub fn run(tools: &Tools, plan: &Plan) -> Result<Sweep<Row>> {
    Sweep::run(plan, &plan.map_sizes, "entries", |n| size(tools, plan, n))
}

fn size(tools: &Tools, plan: &Plan, entries: u32) -> Result<Row> {
    let veth = Veth::new(Ipv6::Off)?;
    veth.server.ns.ip(&["link", "set", "lo", "up"])?;
    let pins = BpfDir::new("bench")?;
    // Every entry gets its own series (none is left to the foreign budget),
    // so the scrape is the full cost of N series.
    let capacity = entries + SLACK;
    let daemon = Daemon::start(tools, &veth, &pins, capacity)?;
    let rss_idle = daemon.memory()?.0;
    let filled = tools.probe(&[
        "fill",
        "--bpffs",
        arg(pins.path()),
        "--entries",
        &entries.to_string(),
        "--ifindex",
        &veth.server.ifindex()?.to_string(),
    ])?;
    ensure!(
        filled["filled"].as_u64() == Some(u64::from(entries)),
        "fill: {filled}"
    );

    let addr: SocketAddr = LISTEN.parse()?;
    // The first scrape also sizes the daemon's series budget; the steady
    // state is what Prometheus sees every interval.
    scrape(&veth, addr)?;
    let (mut wall, mut collect) = (Vec::new(), Vec::new());
    let mut body_bytes = 0;
    let cpu_before = daemon.cpu_seconds()?;
    for _ in 0..plan.trials {
        let (elapsed, body) = scrape(&veth, addr)?;
        ensure!(
            body.contains("aliasstat_receive_packets_total"),
            "the scrape has no address series"
        );
        wall.push(elapsed);
        collect.push(scrape_duration(&body).context("no aliasstat_scrape_duration_seconds")?);
        body_bytes = body.len();
    }
    let cpu = (daemon.cpu_seconds()? - cpu_before) / plan.trials as f64;
    let (rss, rss_peak) = daemon.memory()?;
    daemon.stop()?;

    let read = tools.read_map(pins.path(), plan.trials)?;
    Ok(Row {
        entries,
        scrape: median(&wall).context("no scrapes")?,
        collect: median(&collect).context("no scrapes")?,
        body_bytes,
        read_batched: read.median("batched")?,
        read_cpu: read.median("batched_cpu")?,
        read_per_key: read.median("per_key")?,
        cpu,
        rss,
        rss_idle,
        rss_peak,
    })
}

/// `GET /metrics` from inside the namespace: (seconds to the last byte,
/// body).
fn scrape(veth: &Veth, addr: SocketAddr) -> Result<(f64, String)> {
    let (elapsed, _, body) = get(&veth.server.ns, addr, "/metrics", false)?;
    Ok((
        elapsed,
        String::from_utf8(body).context("a non-UTF-8 response")?,
    ))
}

/// `GET path` from inside `ns`, asking for gzip if `gzip`: (seconds to the
/// last byte, head, body as sent).
pub(super) fn get(
    ns: &lab::Netns,
    addr: SocketAddr,
    path: &str,
    gzip: bool,
) -> Result<(f64, String, Vec<u8>)> {
    let started = Instant::now();
    let mut stream = ns
        .enter(|| TcpStream::connect(addr))?
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let elapsed = started.elapsed().as_secs_f64();
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP head")?;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    ensure!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    // Both servers send a body of known length whole; no chunked decoding
    // needed.
    Ok((elapsed, head, response[end + 4..].to_vec()))
}

fn scrape_duration(body: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix("aliasstat_scrape_duration_seconds "))?
        .trim()
        .parse()
        .ok()
}

/// An `aliasstat run` with the flags the benchmark needs, which the lab's
/// daemon guard does not take.
pub(super) struct Daemon {
    child: Child,
    /// Its log lines after `ready`.
    log: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(tools: &Tools, veth: &Veth, pins: &BpfDir, capacity: u32) -> Result<Self> {
        Self::start_with(tools, veth, pins, capacity, &[])
    }

    /// [`Daemon::start`] with more flags (`--config FILE`).
    pub(super) fn start_with(
        tools: &Tools,
        veth: &Veth,
        pins: &BpfDir,
        capacity: u32,
        more: &[&std::ffi::OsStr],
    ) -> Result<Self> {
        let mut cmd = veth.server.ns.exec(&tools.aliasstat);
        cmd.args(["run", "--interface", &veth.server.ifname])
            .args(more)
            .args(["--map-capacity", &capacity.to_string()])
            .args(["--max-foreign-series", &capacity.to_string()])
            .args(["--listen", LISTEN])
            .arg("--bpffs")
            .arg(pins.path())
            .arg("--state-dir")
            .arg(pins.state_dir())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        lab::cmd::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().context("could not start aliasstat run")?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Lines after `ready` queue for `wait_for`: a few per reload.
                let _ = lines.send(line);
            }
        });
        let mut daemon = Self { child, log: ready };
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut log = String::new();
        loop {
            match daemon
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                // The word, as the lab's guard reads it ("already" is not it).
                Ok(line)
                    if line
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w == "ready") =>
                {
                    return Ok(daemon);
                }
                Ok(line) => {
                    log.push_str(&line);
                    log.push('\n');
                }
                Err(_) => {
                    let _ = daemon.terminate();
                    bail!("aliasstat run was not ready within {READY_TIMEOUT:?}; its log:\n{log}");
                }
            }
        }
    }

    /// Waits for a log line containing `needle`.
    pub(super) fn wait_for(&self, needle: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let line = self
                .log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .with_context(|| format!("no log line with `{needle}` within {within:?}"))?;
            if line.contains(needle) {
                return Ok(());
            }
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds that all the daemon's threads have run, from each
    /// one's schedstat (nanoseconds; /proc/<pid>/stat counts 10 ms ticks).
    pub(super) fn cpu_seconds(&self) -> Result<f64> {
        let mut ns = 0u64;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
            let first = stat
                .split_whitespace()
                .next()
                .context("an empty schedstat")?;
            ns += first
                .parse::<u64>()
                .context("a schedstat that is not a number")?;
        }
        Ok(ns as f64 / 1e9)
    }

    /// (VmRSS, VmHWM) in bytes.
    pub(super) fn memory(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib = |name: &str| -> Option<f64> {
            let v = status.lines().find_map(|l| l.strip_prefix(name))?;
            v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()
        };
        match (kib("VmRSS:"), kib("VmHWM:")) {
            (Some(rss), Some(hwm)) => Ok((rss * 1024.0, hwm * 1024.0)),
            _ => bail!("no VmRSS/VmHWM in /proc/{}/status", self.child.id()),
        }
    }

    pub(super) fn stop(mut self) -> Result<()> {
        let status = self.terminate()?;
        ensure!(status.success(), "aliasstat run exited with {status}");
        Ok(())
    }

    fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // SAFETY: kill(2) on our own child, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        bail!("aliasstat run ignored SIGTERM for 30 s; killed it")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

impl Sweep<Row> {
    pub fn table(&self) -> String {
        let mut t = String::from(
            "| map entries | scrape (HTTP, whole) | of which collecting | /metrics size | map read, batched | map read, per key | batched speed-up | scrape / batched read | CPU: scrape / batched read | daemon RSS idle → after scrapes (peak) |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} | **{}** | {} | {} | **{}** | {} | {:.1}× | {:.2}× | {} / {} = {:.2}× | {} → **{}** ({}) |",
                count(f64::from(r.entries)),
                seconds(r.scrape),
                seconds(r.collect),
                mib(r.body_bytes as f64),
                seconds(r.read_batched),
                seconds(r.read_per_key),
                r.read_per_key / r.read_batched,
                r.scrape / r.read_batched,
                seconds(r.cpu),
                seconds(r.read_cpu),
                r.cpu / r.read_cpu,
                mib(r.rss_idle),
                mib(r.rss),
                mib(r.rss_peak)
            );
        }
        let _ = writeln!(
            t,
            "\nMedian of {} trials after one warm-up scrape.",
            self.trials
        );
        t
    }

    fn row(&self, entries: u32) -> Option<&Row> {
        self.rows.iter().find(|r| r.entries == entries)
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        for (entries, what, rss) in [(10_000, "10k", 20.0), (1_000_000, "1M", 500.0)] {
            let Some(r) = self.row(entries) else { continue };
            v.push(Verdict::at_most(
                &format!("scrape of {what} entries / batched map read"),
                r.scrape / r.read_batched,
                2.0,
                "×",
            ));
            v.push(Verdict::at_most(
                &format!("scrape of {what} entries / batched map read, CPU time"),
                r.cpu / r.read_cpu,
                2.0,
                "×",
            ));
            v.push(Verdict::at_most(
                &format!("daemon RSS at {what} entries, after scrapes"),
                r.rss / (1024.0 * 1024.0),
                rss,
                "MiB",
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_daemons_own_scrape_duration() {
        let body = "# HELP x\naliasstat_scrape_duration_seconds 0.0125\nother 1\n";
        assert_eq!(scrape_duration(body), Some(0.0125));
        assert_eq!(scrape_duration("other 1\n"), None);
    }
}
