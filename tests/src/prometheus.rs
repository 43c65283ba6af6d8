//! A real Prometheus server scraping inside a lab namespace, its query API,
//! the text exposition format, and `promtool check metrics`.

use std::{
    collections::BTreeMap,
    io::Write as _,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::{Netns, cmd, http, scratch::Scratch};

/// Debian's packages, which `cargo xtask setup` installs.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";
/// Prometheus replays its WAL and opens the TSDB before it is ready; on a
/// loaded 2-core machine that takes a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Scrapes come every second; this is many scrape intervals.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nobody listens on in `ns`'s loopback: the kernel picks one, and
/// in a namespace of its own nothing else can take it before it is used.
pub fn free_port(ns: &Netns) -> Result<u16> {
    let listener = ns
        .enter(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))?
        .with_context(|| format!("failed to find a free port in {}", ns.name()))?;
    Ok(listener.local_addr()?.port())
}

/// A Prometheus server running inside a namespace, scraping targets on that
/// namespace's loopback every second. Dropping it kills it and removes its
/// config and TSDB.
pub struct Prometheus<'a> {
    ns: &'a Netns,
    web: SocketAddr,
    child: Child,
    log: PathBuf,
    /// Its API needs TLS and basic auth (`--web.config.file`): the query
    /// methods here speak plain HTTP, and refuse.
    behind_tls: bool,
    // Dropped after the process is gone (fields drop in order).
    _dir: Scratch,
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub timestamp: f64,
    pub value: f64,
}

/// One series of a range query.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<(f64, f64)>,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum ApiData {
    Vector(Vec<ApiSample>),
    Matrix(Vec<ApiSeries>),
    Scalar((f64, String)),
}

#[derive(Deserialize)]
struct ApiSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct ApiSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

impl TryFrom<ApiSeries> for Series {
    type Error = anyhow::Error;

    fn try_from(s: ApiSeries) -> Result<Self> {
        Ok(Self {
            labels: s.metric,
            values: s
                .values
                .into_iter()
                .map(|(t, v)| Ok((t, number(&v)?)))
                .collect::<Result<_>>()?,
        })
    }
}

/// Prometheus writes sample values as strings ("1", "NaN", "+Inf").
fn number(s: &str) -> Result<f64> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().with_context(|| format!("bad sample value {s:?}")),
    }
}

/// Seconds since the Unix epoch, as Prometheus timestamps are.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl<'a> Prometheus<'a> {
    /// Starts Prometheus in `ns` with one job, `job`, scraping `targets`
    /// (addresses on `ns`'s loopback), and waits until it is ready.
    pub fn start(ns: &'a Netns, job: &str, targets: &[SocketAddr]) -> Result<Self> {
        Self::start_with_rules(ns, job, targets, &[])
    }

    /// [`Prometheus::start`], also loading `rule_files` (recording and
    /// alerting rules, absolute paths), evaluated every second.
    pub fn start_with_rules(
        ns: &'a Netns,
        job: &str,
        targets: &[SocketAddr],
        rule_files: &[&Path],
    ) -> Result<Self> {
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let scrape_configs = format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        Self::start_with_scrape_configs(ns, &scrape_configs, rule_files)
    }

    /// [`Prometheus::start_with_rules`] with the `scrape_configs` list
    /// written out (YAML, each item indented by two spaces): for jobs with
    /// a scheme, credentials or TLS settings of their own.
    pub fn start_with_scrape_configs(
        ns: &'a Netns,
        scrape_configs: &str,
        rule_files: &[&Path],
    ) -> Result<Self> {
        Self::spawn(ns, scrape_configs, rule_files, None, None)
    }

    /// Starts Prometheus in `ns`, scraping nothing, on a TSDB backfilled
    /// from the OpenMetrics file `openmetrics` with `promtool tsdb
    /// create-blocks-from openmetrics`.
    pub fn start_backfilled(ns: &'a Netns, openmetrics: &Path) -> Result<Self> {
        Self::spawn(ns, "  []\n", &[], Some(openmetrics), None)
    }

    /// [`Prometheus::start_backfilled`] serving its API with the TLS and
    /// basic auth of `web_config` (exporter-toolkit's format), for clients
    /// of a Prometheus that is not open to everyone.
    pub fn start_backfilled_behind(
        ns: &'a Netns,
        openmetrics: &Path,
        web_config: &Path,
    ) -> Result<Self> {
        Self::spawn(ns, "  []\n", &[], Some(openmetrics), Some(web_config))
    }

    fn spawn(
        ns: &'a Netns,
        scrape_configs: &str,
        rule_files: &[&Path],
        backfill: Option<&Path>,
        web_config: Option<&Path>,
    ) -> Result<Self> {
        ensure!(
            Path::new(PROMETHEUS).is_file(),
            "no Prometheus at {PROMETHEUS}: install Debian's `prometheus` package (`cargo xtask setup` does)"
        );
        let dir = Scratch::new("prom")?;
        let rules: String = rule_files
            .iter()
            .map(|f| format!("  - '{}'\n", f.display()))
            .collect();
        let rules = if rules.is_empty() {
            rules
        } else {
            format!("rule_files:\n{rules}")
        };
        // A 1 s interval keeps the tests short; the timeout may not exceed it.
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 {rules}scrape_configs:\n{scrape_configs}"
            ),
        )?;
        let tsdb = dir.path().join("tsdb");
        if let Some(file) = backfill {
            cmd::run(
                Command::new(PROMTOOL)
                    .args(["tsdb", "create-blocks-from", "openmetrics"])
                    .arg(file)
                    .arg(&tsdb),
            )?;
        }
        let web = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(ns)?));
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("failed to create {}", log.display()))?;
        let mut cmd = ns.exec(PROMETHEUS);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address={web}"))
            // Debian's default console paths need not exist here.
            .arg(format!("--web.console.templates={}", dir.path().display()))
            .arg(format!("--web.console.libraries={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        if let Some(file) = web_config {
            cmd.arg(format!("--web.config.file={}", file.display()));
        }
        cmd::die_with_parent(&mut cmd);
        let shown = cmd::show(&cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to start `{shown}`"))?;
        let mut prometheus = Self {
            ns,
            web,
            child,
            log,
            behind_tls: web_config.is_some(),
            _dir: dir,
        };
        prometheus.wait_ready()?;
        Ok(prometheus)
    }

    /// Where its HTTP API listens, inside its namespace.
    pub fn web(&self) -> SocketAddr {
        self.web
    }

    /// Prometheus's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Prometheus exited ({status}) before it was ready; its log:\n{}",
                    self.log()
                );
            }
            if self.ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "Prometheus was not ready within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/-/ready` answers 200; behind TLS, where this client cannot ask,
    /// the log says so instead.
    fn ready(&self) -> bool {
        if self.behind_tls {
            return self
                .log()
                .contains("Server is ready to receive web requests.");
        }
        http::get(self.ns, self.web, "/-/ready").is_ok_and(|r| r.status == 200)
    }

    fn api(&self, path: &str, params: &[(&str, String)]) -> Result<ApiData> {
        ensure!(
            !self.behind_tls,
            "this Prometheus serves its API behind TLS and basic auth; ask it over https"
        );
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", http::encode(v)))
            .collect();
        let path = format!("{path}?{}", query.join("&"));
        let response = http::get(self.ns, self.web, &path)?;
        let text = response.text()?;
        let parsed: ApiResponse = serde_json::from_str(text)
            .with_context(|| format!("unexpected answer to {path}: {text}"))?;
        if parsed.status != "success" {
            bail!(
                "{path} failed ({}): {}",
                response.status,
                parsed.error.unwrap_or_default()
            );
        }
        parsed
            .data
            .with_context(|| format!("no data in the answer to {path}: {text}"))
    }

    /// Evaluates `expr` at `time` (seconds since the epoch), or now.
    pub fn query(&self, expr: &str, time: Option<f64>) -> Result<Vec<Sample>> {
        let mut params = vec![("query", expr.to_owned())];
        if let Some(t) = time {
            params.push(("time", format!("{t:.3}")));
        }
        match self.api("/api/v1/query", &params)? {
            ApiData::Vector(samples) => samples
                .into_iter()
                .map(|s| {
                    Ok(Sample {
                        labels: s.metric,
                        timestamp: s.value.0,
                        value: number(&s.value.1)?,
                    })
                })
                .collect(),
            ApiData::Scalar((t, v)) => Ok(vec![Sample {
                labels: BTreeMap::new(),
                timestamp: t,
                value: number(&v)?,
            }]),
            _ => bail!("`{expr}` is not an instant vector or a scalar"),
        }
    }

    /// Evaluates a range-vector `expr` (`metric[5m]`) at `time`: the raw
    /// samples of every matching series, as scraped.
    pub fn query_matrix(&self, expr: &str, time: f64) -> Result<Vec<Series>> {
        let params = [("query", expr.to_owned()), ("time", format!("{time:.3}"))];
        match self.api("/api/v1/query", &params)? {
            ApiData::Matrix(series) => series.into_iter().map(Series::try_from).collect(),
            _ => bail!("`{expr}` is not a range vector"),
        }
    }

    /// Evaluates `expr` from `start` to `end` every `step` seconds.
    pub fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Result<Vec<Series>> {
        let params = [
            ("query", expr.to_owned()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step}")),
        ];
        match self.api("/api/v1/query_range", &params)? {
            ApiData::Matrix(series) => series.into_iter().map(Series::try_from).collect(),
            _ => bail!("`{expr}` over a range is not a matrix"),
        }
    }

    /// Waits until `instance` of `job` has been scraped successfully at or
    /// after `after`, and returns that scrape's timestamp. Evaluating
    /// queries at exactly that time reads that one scrape's samples.
    pub fn scraped_after(&self, job: &str, instance: SocketAddr, after: SystemTime) -> Result<f64> {
        let after = unix_seconds(after);
        let up = format!("up{{job=\"{job}\",instance=\"{instance}\"}}");
        // timestamp() gives a sample's own time only when applied straight
        // to a selector; on anything computed it gives the evaluation time.
        let expr = format!("timestamp({up})");
        let deadline = Instant::now() + SCRAPE_TIMEOUT;
        loop {
            if let Some(s) = self.query(&expr, None)?.first()
                && s.value >= after
            {
                let scraped = s.value;
                let ok = self.query(&up, Some(scraped))?;
                ensure!(
                    ok.first().is_some_and(|s| s.value == 1.0),
                    "the scrape of {instance} at {scraped:.3} failed: {ok:?}; targets: {}",
                    http::get(self.ns, self.web, "/api/v1/targets")
                        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                        .unwrap_or_default()
                );
                return Ok(scraped);
            }
            if Instant::now() >= deadline {
                let up = self.query(&format!("up{{job=\"{job}\"}}"), None)?;
                bail!(
                    "no successful scrape of {instance} after {after:.3} within {SCRAPE_TIMEOUT:?}; up: {up:?}; targets: {}; Prometheus log:\n{}",
                    http::get(self.ns, self.web, "/api/v1/targets")
                        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                        .unwrap_or_default(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus<'_> {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                if thread::panicking() {
                    eprintln!("--- Prometheus log ---\n{}--- end ---", self.log());
                }
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("lab: Prometheus ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One sample line of the text exposition format.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Metric {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Parses the text exposition format (version 0.0.4): comment lines are
/// skipped, sample lines become [`Metric`]s.
pub fn parse_text(text: &str) -> Result<Vec<Metric>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).with_context(|| format!("line {}: {line}", n + 1))?);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<Metric> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .context("no value")?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut consumed = None;
        loop {
            // Label name up to '=', or the closing brace.
            let mut key = String::new();
            loop {
                match chars.next() {
                    Some((i, '}')) if key.trim().is_empty() => {
                        consumed = Some(i + 1);
                        break;
                    }
                    Some((_, '=')) => break,
                    Some((_, ',')) if key.trim().is_empty() => {}
                    Some((_, c)) => key.push(c),
                    None => bail!("unterminated label set"),
                }
            }
            if consumed.is_some() {
                break;
            }
            ensure!(chars.next().map(|(_, c)| c) == Some('"'), "unquoted value");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => bail!("a dangling escape"),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => bail!("unterminated label value"),
                }
            }
            labels.insert(key.trim().to_owned(), value);
        }
        rest = &inner[consumed.expect("set before the loop ends")..];
    }
    let value = rest.split_whitespace().next().context("no value")?;
    Ok(Metric {
        name,
        labels,
        value: number(value)?,
    })
}

/// `promtool check metrics` on `text`: its exit status and what it printed.
pub fn promtool_check_metrics(text: &str) -> Result<(i32, String)> {
    ensure!(
        Path::new(PROMTOOL).is_file(),
        "no promtool at {PROMTOOL}: install Debian's `prometheus` package (`cargo xtask setup` does)"
    );
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("failed to start promtool")?;
    let mut stdin = child.stdin.take().expect("piped");
    let text = text.to_owned();
    // Written from a thread: promtool may print before it has read all.
    let writer = thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output()?;
    writer
        .join()
        .expect("the writer does not panic")
        .context("failed to feed promtool")?;
    let code = out.status.code().context("promtool was killed")?;
    Ok((
        code,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exposition_lines() {
        let text = r#"# HELP a_total Things.
# TYPE a_total counter
a_total{address="10.0.0.1",alias="",interface="vb"} 3
a_total{address="fd00::1",alias="we\"b\\x",interface="vb"} 4.5e1
b 1
c{} -Inf
"#;
        let m = parse_text(text).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].name, "a_total");
        assert_eq!(m[0].label("address"), "10.0.0.1");
        assert_eq!(m[0].label("alias"), "");
        assert_eq!(m[0].value, 3.0);
        assert_eq!(m[1].label("alias"), "we\"b\\x");
        assert_eq!(m[1].value, 45.0);
        assert_eq!(
            (m[2].name.as_str(), m[2].labels.len(), m[2].value),
            ("b", 0, 1.0)
        );
        assert_eq!(m[3].value, f64::NEG_INFINITY);
        assert!(parse_text("x{a=\"1\" 2").is_err());
        assert!(parse_text("x{a=1} 2").is_err());
        assert!(parse_text("x").is_err());
    }
}
