//! The Grafana dashboards against real data (issue 6's "Dashboard test").
//!
//! Two aliasstat daemons in two lab namespaces, hosts A and B, sit on one
//! bridge with a client. A real Prometheus in the client's namespace scrapes
//! both every second and evaluates `dashboards/recording.yml` and
//! `dashboards/alerts.yml`, while UDP flows to every alias and a
//! keepalived-style VIP moves from A to B. Then every panel query and every
//! variable query of both dashboards, extracted and substituted by
//! `dashboards/queries.jq` exactly as `dashboards/check.sh` does, runs
//! through Prometheus's HTTP API the way Grafana would send it: instant
//! queries at the end of the lab's time range, range queries over it with
//! Grafana's step. No query may fail; every query must return data unless
//! it is on the commented list of what this lab cannot produce; and a set
//! of facts about the lab must read the same off the dashboards.
//!
//! Needs root, `/usr/bin/prometheus` and jq (`cargo xtask setup` installs
//! both): `cargo xtask test -- dashboards`, or `cargo test --release -p lab
//! --test dashboards -- --nocapture` with `ALIASSTAT_BIN` set. It takes one
//! to two minutes: the fleet view's "moves" table samples presence at whole
//! minutes, so the lab has to span one minute boundary before the move and
//! one after it.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, SystemTime},
};

use anyhow::{Context, Result, bail, ensure};
use lab::{
    BpfDir, Daemon, Host, Netns,
    daemon::Config,
    frames,
    grafana::{self, Query, Scenario, Selection, TimeRange, Variable},
    http,
    lan::Lan,
    link::Ipv6,
    prereq,
    prometheus::{Prometheus, Sample, Series, unix_seconds},
    scratch::Scratch,
    traffic::{self, PacketSocket},
};

const JOB: &str = "aliasstat";
/// aliasstat's default port, on each host's LAN address.
const PORT: u16 = 9864;
const ECHO_PORT: u16 = 5300;
const IFACE: &str = "lab-srv";
const CLIENT: &str = "10.76.0.1";
/// A second client whose ARP cache still points the VIP at A after the
/// move (a permanent neighbour): the router that missed the gratuitous ARP.
const ROUTER: &str = "10.76.0.9";
const VIP: &str = "10.76.0.100";
/// Received by both hosts, held by neither: foreign.
const BROADCAST: &str = "10.76.0.255";
/// VRRP's group, which a keepalived pair's members receive: foreign too.
const MULTICAST: &str = "224.0.0.18";
const MAIN: &str = "aliasstat.json";
const FLEET: &str = "aliasstat-fleet.json";
/// Grafana's data source "Scrape interval", set to what this Prometheus
/// scrapes at, and a panel about 1000 pixels wide.
const SCRAPE_INTERVAL: f64 = 1.0;
const MAX_DATA_POINTS: f64 = 1000.0;
/// Bounds on waits for Prometheus: a few scrapes, or a minute boundary and
/// then a few scrapes. Only a broken lab comes near them.
const PATIENCE: Duration = Duration::from_secs(20);
const PAST_A_MINUTE: Duration = Duration::from_secs(90);

/// One lab host: what it holds, what its alias file says, and the flows
/// the client sends it.
struct Plan {
    /// Documented (owner "ops"); Prometheus scrapes it, so it has traffic.
    primary: &'static str,
    /// Configured besides the primary, each with a flow from the client and
    /// an echo server. The last one is not in the alias file.
    served: [&'static str; 3],
    undocumented: &'static str,
    /// Documented, not configured, no traffic.
    absent: &'static str,
    file: &'static str,
}

const A: Plan = Plan {
    primary: "10.76.0.2",
    served: ["10.76.0.11", "10.76.0.12", "10.76.0.51"],
    undocumented: "10.76.0.51",
    absent: "10.76.0.19",
    file: r#"[[alias]]
name = "node-a"
address = "10.76.0.2"
owner = "ops"
purpose = "primary address, scraped by Prometheus"
interface = "lab-srv"

[[alias]]
name = "vip"
address = "10.76.0.100"
owner = "lb-team"
purpose = "keepalived VIP shared with node-b"
interface = "lab-srv"

[[alias]]
name = "web-a"
address = "10.76.0.11"
owner = "web-team"
purpose = "shop frontend"

[[alias]]
name = "mail-a"
address = "10.76.0.12"
owner = "mail-team"
purpose = "SMTP submission"

[[alias]]
name = "old-a"
address = "10.76.0.19"
owner = "web-team"
purpose = "retired frontend, not configured any more"
interface = "lab-srv"
"#,
};

const B: Plan = Plan {
    primary: "10.76.0.3",
    served: ["10.76.0.21", "10.76.0.22", "10.76.0.52"],
    undocumented: "10.76.0.52",
    absent: "10.76.0.29",
    file: r#"[[alias]]
name = "node-b"
address = "10.76.0.3"
owner = "ops"
purpose = "primary address, scraped by Prometheus"
interface = "lab-srv"

[[alias]]
name = "vip"
address = "10.76.0.100"
owner = "lb-team"
purpose = "keepalived VIP shared with node-a"
interface = "lab-srv"

[[alias]]
name = "web-b"
address = "10.76.0.21"
owner = "web-team"
purpose = "shop frontend"

[[alias]]
name = "db-b"
address = "10.76.0.22"
owner = "db-team"
purpose = "PostgreSQL"

[[alias]]
name = "old-b"
address = "10.76.0.29"
owner = "db-team"
purpose = "retired replica, not configured any more"
interface = "lab-srv"
"#,
};

/// Every owner in the two files: each has an alias with traffic.
const OWNERS: [&str; 5] = ["db-team", "lb-team", "mail-team", "ops", "web-team"];
/// The documented aliases that carry traffic (all but old-a and old-b).
const BUSY_ALIASES: [&str; 7] = [
    "db-b", "mail-a", "node-a", "node-b", "vip", "web-a", "web-b",
];
const ALL_ALIASES: [&str; 9] = [
    "db-b", "mail-a", "node-a", "node-b", "old-a", "old-b", "vip", "web-a", "web-b",
];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a valid address literal")
}

fn target(plan: &Plan) -> SocketAddr {
    SocketAddr::new(ip(plan.primary), PORT)
}

/// Prometheus's `instance` label of a host.
fn instance(plan: &Plan) -> String {
    target(plan).to_string()
}

fn now() -> f64 {
    unix_seconds(SystemTime::now())
}

/// Polls `read` until `done` accepts it, for at most `within`. Each read is a Prometheus query; a few per second are plenty.
fn poll<T: std::fmt::Debug>(
    what: &str,
    within: Duration,
    read: impl FnMut() -> Result<T>,
    done: impl Fn(&T) -> bool,
) -> Result<T> {
    lab::poll::until(what, within, Duration::from_millis(200), read, done)
}

/// Threads that send or answer datagrams until told to stop. Dropping it
/// stops and joins them, so a failing test leaves no sender behind.
#[derive(Default)]
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Result<()>>)>,
}

impl Traffic {
    fn spawn(
        &mut self,
        what: String,
        body: impl FnOnce(&AtomicBool) -> Result<()> + Send + 'static,
    ) {
        let stop = self.stop.clone();
        self.threads
            .push((what, thread::spawn(move || body(&stop))));
    }

    /// `socket` sends `payload` bytes to `to` every `every` until stopped;
    /// `sent` counts them.
    fn flow(
        &mut self,
        socket: UdpSocket,
        to: SocketAddr,
        payload: usize,
        every: Duration,
        sent: Arc<AtomicU64>,
    ) {
        self.spawn(format!("flow to {to}"), move |stop| {
            let data = vec![0x5a; payload];
            while !stop.load(Ordering::SeqCst) {
                socket
                    .send_to(&data, to)
                    .with_context(|| format!("failed to send to {to}"))?;
                sent.fetch_add(1, Ordering::SeqCst);
                thread::sleep(every);
            }
            Ok(())
        });
    }

    /// Answers every datagram on `socket` with `reply` bytes; `replied`
    /// counts the answers the kernel took.
    fn echo(&mut self, socket: UdpSocket, reply: usize, replied: Arc<AtomicU64>) -> Result<()> {
        let at = socket.local_addr()?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        self.spawn(format!("echo on {at}"), move |stop| {
            let data = vec![0xa5; reply];
            let mut buf = vec![0; 2048];
            while !stop.load(Ordering::SeqCst) {
                let Ok((_, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if socket.send_to(&data, from).is_ok() {
                    replied.fetch_add(1, Ordering::SeqCst);
                }
            }
            Ok(())
        });
        Ok(())
    }

    /// Stops every thread; the first error any of them hit.
    fn finish(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let mut first = Ok(());
        for (what, thread) in self.threads.drain(..) {
            let outcome = match thread.join() {
                Ok(outcome) => outcome,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            if let Err(e) = outcome
                && first.is_ok()
            {
                first = Err(e.context(what));
            }
        }
        first
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, thread) in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The VIP's presence per instance as the recording rule had it at `at`:
/// instance -> (value, when the rule recorded it).
fn vip_presence(prom: &Prometheus<'_>, at: f64) -> Result<BTreeMap<String, (f64, f64)>> {
    let series = r#"interface_address:aliasstat_address_present:alias{alias="vip"}"#;
    let values = prom.query(&format!("max by (instance) ({series})"), Some(at))?;
    let stamps = prom.query(
        &format!("max by (instance) (timestamp({series}))"),
        Some(at),
    )?;
    values
        .into_iter()
        .map(|v| {
            let instance = v.labels.get("instance").cloned().unwrap_or_default();
            let stamp = stamps
                .iter()
                .find(|s| s.labels.get("instance") == Some(&instance))
                .with_context(|| format!("no recording time for {instance}"))?;
            Ok((instance, (v.value, stamp.value)))
        })
        .collect()
}

/// The last time the recording rules ran, as far as their output shows.
fn rules_ran(prom: &Prometheus<'_>) -> Result<f64> {
    let ran = prom.query(
        "max(timestamp(interface_address:aliasstat_address_present:alias))",
        None,
    )?;
    Ok(ran.first().map_or(0.0, |s| s.value))
}

/// Waits until the recording rules have the VIP on A as `a` and on B as
/// `b`, then until they have run past the next whole minute, and returns
/// that minute. The fleet view's "moves" table samples at whole minutes:
/// each state of the VIP needs one minute boundary of its own.
fn hold_across_a_minute(prom: &Prometheus<'_>, a: f64, b: f64) -> Result<f64> {
    let (ia, ib) = (instance(&A), instance(&B));
    let want = |p: &BTreeMap<String, (f64, f64)>| {
        p.get(&ia).map(|v| v.0) == Some(a) && p.get(&ib).map(|v| v.0) == Some(b)
    };
    let reached = poll(
        &format!("the rules recording the VIP as {a} on A and {b} on B"),
        PATIENCE,
        || vip_presence(prom, now()),
        want,
    )?;
    let since = reached.values().map(|v| v.1).fold(0.0, f64::max);
    let minute = (since / 60.0).ceil() * 60.0;
    poll(
        "the recording rules running past the next whole minute",
        PAST_A_MINUTE,
        || rules_ran(prom),
        |&ran| ran >= minute,
    )?;
    let at_minute = vip_presence(prom, minute)?;
    ensure!(
        want(&at_minute),
        "at {minute} the rules had {at_minute:?}, not A={a}, B={b}"
    );
    Ok(minute)
}

/// What a query returned.
#[derive(Debug)]
enum Outcome {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Outcome {
    fn len(&self) -> usize {
        match self {
            Self::Vector(v) => v.len(),
            Self::Matrix(m) => m.len(),
        }
    }

    fn label_sets(&self) -> Vec<&BTreeMap<String, String>> {
        match self {
            Self::Vector(v) => v.iter().map(|s| &s.labels).collect(),
            Self::Matrix(m) => m.iter().map(|s| &s.labels).collect(),
        }
    }

    /// The values of `labels` of every series, "" where one is missing.
    fn keys(&self, labels: &[&str]) -> BTreeSet<Vec<String>> {
        self.label_sets()
            .into_iter()
            .map(|l| {
                labels
                    .iter()
                    .map(|n| l.get(*n).cloned().unwrap_or_default())
                    .collect()
            })
            .collect()
    }

    /// An instant vector as `label value -> sample value`.
    fn by(&self, label: &str) -> Result<BTreeMap<String, f64>> {
        let Self::Vector(v) = self else {
            bail!("expected an instant vector, got {self:?}");
        };
        Ok(v.iter()
            .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
            .collect())
    }

    /// Every value: of each sample, or of each series at each step.
    fn values(&self) -> Vec<f64> {
        match self {
            Self::Vector(v) => v.iter().map(|s| s.value).collect(),
            Self::Matrix(m) => m
                .iter()
                .flat_map(|s| s.values.iter().map(|v| v.1))
                .collect(),
        }
    }

    /// The value of a one-sample instant vector.
    fn only(&self) -> Result<f64> {
        match self {
            Self::Vector(v) if v.len() == 1 => Ok(v[0].value),
            _ => bail!("expected one sample, got {self:?}"),
        }
    }

    /// Per series with `label`: its values over time, runs of the same
    /// value folded into one (`[1, 0]`: one step down).
    fn shapes(&self, label: &str) -> Result<BTreeMap<String, Vec<f64>>> {
        let Self::Matrix(m) = self else {
            bail!("expected a range result, got {self:?}");
        };
        Ok(m.iter()
            .map(|s| {
                let mut shape: Vec<f64> = s.values.iter().map(|v| v.1).collect();
                shape.dedup();
                (s.labels.get(label).cloned().unwrap_or_default(), shape)
            })
            .collect())
    }
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<Vec<String>> {
    items.iter().map(|s| vec![(*s).to_owned()]).collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<Vec<String>> {
    items
        .iter()
        .map(|(a, b)| vec![(*a).to_owned(), (*b).to_owned()])
        .collect()
}

fn equal<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<()> {
    ensure!(got == want, "expected {want:?}, got {got:?}");
    Ok(())
}

fn all_positive(values: &BTreeMap<String, f64>) -> Result<()> {
    ensure!(values.values().all(|v| *v > 0.0), "a zero in {values:?}");
    Ok(())
}

type Check = Box<dyn Fn(&Outcome) -> Result<()>>;

/// Something the lab did that a query must show: in `scenario`, the query
/// `title`/`ref_id` of `dashboard`.
struct Fact {
    scenario: &'static str,
    dashboard: &'static str,
    title: &'static str,
    ref_id: &'static str,
    says: String,
    check: Check,
}

fn fact(
    scenario: &'static str,
    dashboard: &'static str,
    title: &'static str,
    ref_id: &'static str,
    says: impl Into<String>,
    check: impl Fn(&Outcome) -> Result<()> + 'static,
) -> Fact {
    Fact {
        scenario,
        dashboard,
        title,
        ref_id,
        says: says.into(),
        check: Box::new(check),
    }
}

/// Queries this lab legitimately leaves empty, in every scenario, and why.
/// Each must come back empty: data there means the lab or the exporter
/// changed and the entry is stale. (The overflow panels are not here: the
/// daemon creates its overflow counters at 0 when it attaches, so they have
/// data, which must be all zeros; see the facts.)
const EMPTY_HERE: [(&str, &str, &str, &str); 1] = [(
    FLEET,
    "Holders of every documented alias",
    "B",
    "it counts holders on lo (direct server return), and no lab host has an alias on lo",
)];

fn allowed_empty(dashboard: &str, q: &Query) -> Option<&'static str> {
    EMPTY_HERE
        .iter()
        .find(|(d, t, r, _)| *d == dashboard && *t == q.title && *r == q.ref_id)
        .map(|e| e.3)
}

/// What each variable is set to in a scenario: "all" is every drop-down
/// on All (the fleet view's single-value Alias on the VIP); "single" is one
/// instance, interface, owner and alias of host A.
fn pick(scenario: &str, dashboard: &str, var: &Variable) -> Selection {
    let one = |v: &str| Selection::Values(vec![v.to_owned()]);
    match (scenario, dashboard, var.name.as_str()) {
        ("all", FLEET, "alias") => one("vip"),
        ("all", _, _) => Selection::All,
        (_, FLEET, "alias") => one("web-a"),
        (_, _, "job") => one(JOB),
        (_, _, "instance") => one(&instance(&A)),
        (_, _, "interface") => one(IFACE),
        (_, _, "owner") => one("web-team"),
        (_, _, "alias") => one("web-a"),
        _ => Selection::All,
    }
}

/// Renders every query variable of `dashboard` for `scenario`, in order,
/// each from the options its own query finds at `at` (Grafana asks the
/// series API over the time range; an instant query at its end sees the
/// same series here, since none of them ends before it).
fn resolve(
    prom: &Prometheus<'_>,
    dashboard: &Path,
    name: &str,
    range: &TimeRange,
    at: f64,
) -> Result<Scenario> {
    let file = file_name(dashboard);
    let mut scenario = Scenario::new(name, range.builtins());
    for var in grafana::variables(dashboard)? {
        if var.kind != "query" {
            continue;
        }
        let queries = grafana::queries(dashboard, &scenario)?;
        let title = format!("${}", var.name);
        let q = queries
            .iter()
            .find(|q| q.source == "variable" && q.title == title)
            .with_context(|| format!("{file}: no query for {title}"))?;
        grafana::fully_substituted(q)?;
        let label = q
            .label
            .as_deref()
            .context("a variable query names its label")?;
        let options: BTreeSet<String> = prom
            .query(&q.expr, Some(at))?
            .into_iter()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        let options: Vec<String> = options.into_iter().collect();
        let selection = pick(name, file, &var);
        if let Selection::Values(values) = &selection {
            for v in values {
                ensure!(
                    options.contains(v),
                    "{file}: {title} offers {options:?}, not {v}"
                );
            }
        }
        scenario.select(&var, &selection, &options)?;
    }
    Ok(scenario)
}

fn file_name(path: &Path) -> &'static str {
    match path.file_name().and_then(|f| f.to_str()) {
        Some(MAIN) => MAIN,
        Some(FLEET) => FLEET,
        _ => "?",
    }
}

/// The facts the lab established, as the dashboards must show them.
fn facts(moved_at: f64) -> Vec<Fact> {
    let (ia, ib) = (instance(&A), instance(&B));
    let at = |addr: &str, inst: &str| vec![inst.to_owned(), addr.to_owned()];
    let mut f = Vec::new();

    // --- scenario "all": every variable on All, fleet view on the VIP.
    let strings = |v: &[&str]| -> Vec<String> { v.iter().map(|s| (*s).to_owned()).collect() };
    for (dashboard, title, label, want) in [
        (MAIN, "$job", "job", strings(&[JOB])),
        (MAIN, "$instance", "instance", vec![ia.clone(), ib.clone()]),
        (MAIN, "$interface", "interface", strings(&[IFACE])),
        (MAIN, "$owner", "owner", strings(&OWNERS)),
        (MAIN, "$alias", "alias", strings(&ALL_ALIASES)),
        (FLEET, "$job", "job", strings(&[JOB])),
        (FLEET, "$alias", "alias", strings(&ALL_ALIASES)),
    ] {
        let want: BTreeSet<Vec<String>> = want.into_iter().map(|v| vec![v]).collect();
        f.push(fact(
            "all",
            dashboard,
            title,
            "",
            format!("offers exactly {want:?}"),
            move |o| equal(o.keys(&[label]), want.clone()),
        ));
    }
    f.push(fact(
        "all",
        MAIN,
        "Undocumented addresses in use",
        "A",
        "2 (one per host)",
        |o| equal(o.only()?, 2.0),
    ));
    let undocumented: BTreeSet<Vec<String>> =
        [at(A.undocumented, &ia), at(B.undocumented, &ib)].into();
    for r in ["A", "B"] {
        let want = undocumented.clone();
        f.push(fact(
            "all",
            MAIN,
            "Undocumented addresses with traffic",
            r,
            format!("exactly {want:?}"),
            move |o| equal(o.keys(&["instance", "address"]), want.clone()),
        ));
    }
    let absent_foreign: BTreeSet<Vec<String>> = [
        ("absent", VIP, &ia),
        ("foreign", BROADCAST, &ia),
        ("foreign", BROADCAST, &ib),
        ("foreign", MULTICAST, &ia),
        ("foreign", MULTICAST, &ib),
    ]
    .iter()
    .map(|(s, a, i)| vec![(*s).to_owned(), (*a).to_owned(), (*i).clone()])
    .collect();
    f.push(fact(
        "all",
        MAIN,
        "Absent / foreign addresses receiving",
        "A",
        "5",
        |o| equal(o.only()?, 5.0),
    ));
    {
        let want = absent_foreign.clone();
        f.push(fact(
            "all",
            MAIN,
            "Traffic to absent and foreign addresses",
            "A",
            "the VIP absent on A after the move; broadcast and VRRP multicast foreign on both",
            move |o| equal(o.keys(&["state", "address", "instance"]), want.clone()),
        ));
    }
    for r in ["A", "B"] {
        f.push(fact("all", MAIN, "Exporters up", r, "2", |o| {
            equal(o.only()?, 2.0)
        }));
    }
    for title in [
        "Top aliases by receive bit/s",
        "Top aliases by transmit bit/s",
    ] {
        f.push(fact(
            "all",
            MAIN,
            title,
            "A",
            "the 7 documented aliases with traffic, each > 0",
            |o| {
                equal(o.keys(&["alias"]), set(BUSY_ALIASES))?;
                all_positive(&o.by("alias")?)
            },
        ));
    }
    for (title, r) in [
        ("Throughput per alias", "A"),
        ("Throughput per alias", "B"),
        ("Packets per alias", "A"),
        ("Packets per alias", "B"),
    ] {
        f.push(fact(
            "all",
            MAIN,
            title,
            r,
            "a series for each of the 7 documented aliases with traffic",
            |o| equal(o.keys(&["alias"]), set(BUSY_ALIASES)),
        ));
    }
    for r in ["A", "B"] {
        f.push(fact(
            "all",
            MAIN,
            "Bytes per owner",
            r,
            "every owner in the files, each > 0",
            |o| {
                equal(o.keys(&["owner"]), set(OWNERS))?;
                all_positive(&o.by("owner")?)
            },
        ));
        f.push(fact(
            "all",
            MAIN,
            "Bytes per alias",
            r,
            "the 7 aliases with traffic under their owners, each > 0",
            |o| {
                let want = pairs(&[
                    ("db-team", "db-b"),
                    ("lb-team", "vip"),
                    ("mail-team", "mail-a"),
                    ("ops", "node-a"),
                    ("ops", "node-b"),
                    ("web-team", "web-a"),
                    ("web-team", "web-b"),
                ]);
                equal(o.keys(&["owner", "alias"]), want)?;
                all_positive(&o.by("alias")?)
            },
        ));
    }
    let moved = |o: &Outcome, per: &str| -> Result<()> {
        let vip: BTreeMap<String, Vec<f64>> = match o {
            Outcome::Matrix(m) => Outcome::Matrix(
                m.iter()
                    .filter(|s| s.labels.get("address").map(String::as_str) == Some(VIP))
                    .cloned()
                    .collect(),
            )
            .shapes(per)?,
            _ => bail!("expected a range result"),
        };
        equal(
            vip,
            BTreeMap::from([
                (instance(&A), vec![1.0, 0.0]),
                (instance(&B), vec![0.0, 1.0]),
            ]),
        )
    };
    f.push(fact(
        "all",
        MAIN,
        "Address presence timeline",
        "A",
        "the VIP: 1 then 0 on A, 0 then 1 on B",
        move |o| moved(o, "instance"),
    ));
    {
        let want: BTreeSet<Vec<String>> = [
            at(A.primary, &ia),
            at(A.served[0], &ia),
            at(A.served[1], &ia),
            at(A.served[2], &ia),
            at(B.primary, &ib),
            at(B.served[0], &ib),
            at(B.served[1], &ib),
            at(B.served[2], &ib),
            at(VIP, &ib),
        ]
        .into();
        f.push(fact(
            "all",
            MAIN,
            "Addresses configured now",
            "A",
            "A's 4 addresses, and B's 4 plus the VIP",
            move |o| equal(o.keys(&["instance", "address"]), want.clone()),
        ));
    }
    f.push(fact(
        "all",
        MAIN,
        "Attached programs",
        "A",
        "tc receive and transmit on lab-srv of both hosts, all attached",
        |o| {
            equal(o.len(), 4)?;
            equal(
                o.keys(&["instance", "interface"]),
                pairs(&[(&instance(&A), IFACE), (&instance(&B), IFACE)]),
            )?;
            ensure!(o.values().iter().all(|v| *v == 1.0), "{o:?}");
            Ok(())
        },
    ));
    for (title, r) in [
        ("Non-IP traffic, bit/s", "A"),
        ("Non-IP traffic, bit/s", "B"),
        ("Non-IP traffic, packets/s", "A"),
        ("Non-IP traffic, packets/s", "B"),
    ] {
        f.push(fact(
            "all",
            MAIN,
            title,
            r,
            "ARP on both hosts, above 0 at some point",
            |o| {
                equal(
                    o.keys(&["instance"]),
                    set([instance(&A).as_str(), instance(&B).as_str()]),
                )?;
                ensure!(o.values().iter().any(|v| *v > 0.0), "{o:?}");
                Ok(())
            },
        ));
    }
    for (title, r) in [
        (
            "Overflow traffic (not attributed to any address), bit/s",
            "A",
        ),
        (
            "Overflow traffic (not attributed to any address), bit/s",
            "B",
        ),
        (
            "Overflow traffic (not attributed to any address), packets/s",
            "A",
        ),
        (
            "Overflow traffic (not attributed to any address), packets/s",
            "B",
        ),
    ] {
        f.push(fact(
            "all",
            MAIN,
            title,
            r,
            "0 on both hosts throughout: the map never filled",
            |o| {
                equal(o.len(), 2)?;
                ensure!(o.values().iter().all(|v| *v == 0.0), "{o:?}");
                Ok(())
            },
        ));
    }
    f.push(fact(
        "all",
        MAIN,
        "Exporters",
        "C",
        "the last reload succeeded on both",
        |o| {
            let by = o.by("instance")?;
            equal(by.len(), 2)?;
            all_positive(&by)
        },
    ));
    f.push(fact(
        "all",
        FLEET,
        "Hosts holding $alias now",
        "A",
        "1",
        |o| equal(o.only()?, 1.0),
    ));
    f.push(fact(
        "all",
        FLEET,
        "Where $alias lives now",
        "A",
        "exactly B",
        |o| equal(o.keys(&["instance"]), set([instance(&B).as_str()])),
    ));
    f.push(fact(
        "all",
        FLEET,
        "Where $alias lived (VIP moves)",
        "A",
        "1 then 0 on A, 0 then 1 on B",
        move |o| moved(o, "instance"),
    ));
    f.push(fact(
        "all",
        FLEET,
        "Moves of $alias in the selected range",
        "A",
        "one change on A, one on B",
        |o| {
            equal(
                o.by("instance")?,
                BTreeMap::from([(instance(&A), 1.0), (instance(&B), 1.0)]),
            )
        },
    ));
    f.push(fact(
        "all",
        FLEET,
        "Moves of $alias in the selected range",
        "B",
        "last held: A before the move, B after it",
        move |o| {
            let by = o.by("instance")?;
            let (a, b) = (by.get(&instance(&A)), by.get(&instance(&B)));
            let moved_ms = moved_at * 1000.0;
            ensure!(
                by.len() == 2
                    && a.is_some_and(|a| *a <= moved_ms)
                    && b.is_some_and(|b| *b >= moved_ms),
                "expected A's last hold at or before the move ({moved_ms}) and B's after it, got {by:?}"
            );
            Ok(())
        },
    ));
    for r in ["A", "B"] {
        f.push(fact(
            "all",
            FLEET,
            "$alias traffic per instance",
            r,
            "both hosts (A before the move and its stale neighbour after, B after)",
            |o| {
                equal(
                    o.keys(&["instance"]),
                    set([instance(&A).as_str(), instance(&B).as_str()]),
                )
            },
        ));
    }
    f.push(fact(
        "all",
        FLEET,
        "Holders of every documented alias",
        "A",
        "1 for each alias held, 0 for old-a and old-b",
        |o| {
            let want: BTreeMap<String, f64> = ALL_ALIASES
                .iter()
                .map(|a| {
                    (
                        (*a).to_owned(),
                        if a.starts_with("old-") { 0.0 } else { 1.0 },
                    )
                })
                .collect();
            equal(o.by("alias")?, want)
        },
    ));

    // --- scenario "single": host A, lab-srv, owner web-team, alias web-a.
    for (dashboard, title, label, want) in [
        (MAIN, "$instance", "instance", vec![ia.clone(), ib.clone()]),
        (MAIN, "$interface", "interface", vec![IFACE.to_owned()]),
        (
            MAIN,
            "$owner",
            "owner",
            strings(&["lb-team", "mail-team", "ops", "web-team"]),
        ),
        (MAIN, "$alias", "alias", strings(&["old-a", "web-a"])),
    ] {
        let want: BTreeSet<Vec<String>> = want.into_iter().map(|v| vec![v]).collect();
        f.push(fact(
            "single",
            dashboard,
            title,
            "",
            format!("offers exactly {want:?}"),
            move |o| equal(o.keys(&[label]), want.clone()),
        ));
    }
    f.push(fact(
        "single",
        MAIN,
        "Undocumented addresses in use",
        "A",
        "1",
        |o| equal(o.only()?, 1.0),
    ));
    for r in ["A", "B"] {
        let want: BTreeSet<Vec<String>> = [at(A.undocumented, &ia)].into();
        f.push(fact(
            "single",
            MAIN,
            "Undocumented addresses with traffic",
            r,
            format!("exactly {want:?}"),
            move |o| equal(o.keys(&["instance", "address"]), want.clone()),
        ));
        f.push(fact("single", MAIN, "Exporters up", r, "1", |o| {
            equal(o.only()?, 1.0)
        }));
        f.push(fact(
            "single",
            MAIN,
            "Bytes per owner",
            r,
            "web-team only, > 0",
            |o| {
                equal(o.keys(&["owner"]), set(["web-team"]))?;
                all_positive(&o.by("owner")?)
            },
        ));
        f.push(fact(
            "single",
            MAIN,
            "Bytes per alias",
            r,
            "web-a of web-team only, > 0",
            |o| {
                equal(o.keys(&["owner", "alias"]), pairs(&[("web-team", "web-a")]))?;
                all_positive(&o.by("alias")?)
            },
        ));
    }
    f.push(fact(
        "single",
        MAIN,
        "Absent / foreign addresses receiving",
        "A",
        "3",
        |o| equal(o.only()?, 3.0),
    ));
    {
        let want: BTreeSet<Vec<String>> = absent_foreign
            .iter()
            .filter(|k| k[2] == ia)
            .cloned()
            .collect();
        f.push(fact(
            "single",
            MAIN,
            "Traffic to absent and foreign addresses",
            "A",
            "A's rows only",
            move |o| equal(o.keys(&["state", "address", "instance"]), want.clone()),
        ));
    }
    f.push(fact(
        "single",
        MAIN,
        "Top aliases by receive bit/s",
        "A",
        "web-a only",
        |o| equal(o.keys(&["alias"]), set(["web-a"])),
    ));
    {
        let want: BTreeSet<Vec<String>> = [at(A.served[0], &ia)].into();
        f.push(fact(
            "single",
            MAIN,
            "Addresses configured now",
            "A",
            "web-a on A only",
            move |o| equal(o.keys(&["instance", "address"]), want.clone()),
        ));
    }
    f.push(fact(
        "single",
        FLEET,
        "Where $alias lives now",
        "A",
        "web-a: exactly A",
        |o| equal(o.keys(&["instance"]), set([instance(&A).as_str()])),
    ));
    f.push(fact(
        "single",
        FLEET,
        "Moves of $alias in the selected range",
        "A",
        "web-a never moved",
        |o| equal(o.by("instance")?, BTreeMap::from([(instance(&A), 0.0)])),
    ));
    f
}

/// Runs `q` as Grafana would: an instant query at the end of the range, or
/// a range query over it with `$__interval` as the step.
fn evaluate(prom: &Prometheus<'_>, q: &Query, range: &TimeRange) -> Result<Outcome> {
    if q.instant {
        Ok(Outcome::Vector(prom.query(&q.expr, Some(range.to))?))
    } else {
        let (start, end) = range.aligned();
        Ok(Outcome::Matrix(prom.query_range(
            &q.expr,
            start,
            end,
            range.interval(),
        )?))
    }
}

/// Every rule of both files evaluates without error on the lab's data.
fn rules_healthy(prom: &Prometheus<'_>, ns: &Netns) -> Result<usize> {
    let response = http::get(ns, prom.web(), "/api/v1/rules")?;
    let body: serde_json::Value = serde_json::from_str(response.text()?)?;
    let rules: Vec<&serde_json::Value> = body["data"]["groups"]
        .as_array()
        .context("no rule groups")?
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{} ({}): {}", r["name"], r["health"], r["lastError"]))
        .collect();
    ensure!(
        !rules.is_empty() && unhealthy.is_empty(),
        "rules that do not evaluate cleanly: {unhealthy:#?}"
    );
    Ok(rules.len())
}

/// Configures a host's addresses, in the order a host boots: the primary
/// first, so the others are its secondaries.
fn configure(host: &Host, plan: &Plan, vip: bool) -> Result<()> {
    host.add_addr(ip(plan.primary), 24)?;
    for a in plan.served {
        host.add_addr(ip(a), 24)?;
    }
    if vip {
        host.add_addr(ip(VIP), 24)?;
    }
    // The echo servers bind to the VIP before it is theirs (B's) and keep
    // their socket after it has gone (A's), as a keepalived-managed
    // service does.
    host.ns.sysctl("net.ipv4.ip_nonlocal_bind", "1")
}

/// `aliasstat run` on `host` with `plan`'s alias file, serving on the
/// host's LAN address for Prometheus.
fn start(host: &Host, pins: &BpfDir, file: &Path, plan: &Plan) -> Result<Daemon> {
    Daemon::start(&Config {
        config: Some(file),
        listen: Some(target(plan)),
        ..Config::new(&host.ns, pins, &host.ifname)
    })
}

fn repo_file(relative: &str) -> Result<PathBuf> {
    let path = grafana::dashboards_dir().join(relative);
    path.canonicalize()
        .with_context(|| format!("no {}", path.display()))
}

#[test]
fn dashboards_show_two_hosts_and_a_vip_move() -> Result<()> {
    prereq::require()?;
    let recording = repo_file("recording.yml")?;
    let alerts = repo_file("alerts.yml")?;
    // A third "server" namespace on the bridge plays the stale router.
    let lan = Lan::new(&["a", "b", "router"], Ipv6::Off)?;
    let (client, a, b, router) = (
        &lan.client,
        &lan.servers[0],
        &lan.servers[1],
        &lan.servers[2],
    );
    client.add_addr(ip(CLIENT), 24)?;
    // Prometheus's API listens on the client's loopback.
    client.ns.ip(&["link", "set", "lo", "up"])?;
    // Link-local multicast still needs a route to leave by.
    client
        .ns
        .ip(&["route", "add", "224.0.0.0/4", "dev", &client.ifname])?;
    router.add_addr(ip(ROUTER), 24)?;
    configure(a, &A, true)?;
    configure(b, &B, false)?;

    let dir = Scratch::new("dash")?;
    let (a_file, b_file) = (dir.write("a.toml", A.file)?, dir.write("b.toml", B.file)?);
    let (a_pins, b_pins) = (BpfDir::new("a")?, BpfDir::new("b")?);
    let a_daemon = start(a, &a_pins, &a_file, &A)?;
    let b_daemon = start(b, &b_pins, &b_file, &B)?;

    // The dashboards' time range starts here: nothing was scraped before.
    let from = now().floor();
    let prom = Prometheus::start_with_rules(
        &client.ns,
        JOB,
        &[target(&A), target(&B)],
        &[&recording, &alerts],
    )?;

    // Traffic: a flow to every served address and to the VIP, each
    // answered; sizes differ per address so nothing adds up by accident.
    let mut traffic = Traffic::default();
    let sent = Arc::new(AtomicU64::new(0));
    // Answers per echo server, "A 10.76.0.11": each host has its own for
    // the VIP.
    let mut replied: BTreeMap<String, Arc<AtomicU64>> = BTreeMap::new();
    for (host, plan, name) in [(a, &A, "A"), (b, &B, "B")] {
        for (i, address) in plan.served.iter().chain([&VIP]).enumerate() {
            let socket = traffic::udp_socket(&host.ns, SocketAddr::new(ip(address), ECHO_PORT))?;
            let count = Arc::new(AtomicU64::new(0));
            traffic.echo(socket, 40 + 10 * i, count.clone())?;
            replied.insert(format!("{name} {address}"), count);
        }
    }
    let answers = |server: &str| replied[server].load(Ordering::SeqCst);
    for (i, address) in A.served.iter().chain(&B.served).chain([&VIP]).enumerate() {
        let socket =
            traffic::udp_socket(&client.ns, SocketAddr::new(ip(CLIENT), 40000 + i as u16))?;
        traffic.flow(
            socket,
            SocketAddr::new(ip(address), ECHO_PORT),
            100 + 50 * i,
            Duration::from_millis(20),
            sent.clone(),
        );
    }
    let broadcast = traffic::udp_socket(&client.ns, SocketAddr::new(ip(CLIENT), 40100))?;
    broadcast.set_broadcast(true)?;
    traffic.flow(
        broadcast,
        SocketAddr::new(ip(BROADCAST), 5400),
        60,
        Duration::from_millis(200),
        sent.clone(),
    );
    let multicast = traffic::udp_socket(&client.ns, SocketAddr::new(ip(CLIENT), 40101))?;
    multicast.set_multicast_loop_v4(false)?;
    traffic.flow(
        multicast,
        SocketAddr::new(ip(MULTICAST), 5400),
        40,
        Duration::from_millis(200),
        sent.clone(),
    );
    // The router starts once A has answered on the VIP: by then the bridge
    // has learnt A's MAC, so the router's frames to it are never flooded
    // to B (which would count them as traffic to its absent VIP).
    poll(
        "A answering on the VIP",
        PATIENCE,
        || Ok(answers(&format!("A {VIP}"))),
        |&n| n > 0,
    )?;
    router.add_neighbour(ip(VIP), a.mac)?;
    let stale = traffic::udp_socket(&router.ns, SocketAddr::new(ip(ROUTER), 40200))?;
    traffic.flow(
        stale,
        SocketAddr::new(ip(VIP), ECHO_PORT),
        80,
        Duration::from_millis(100),
        sent.clone(),
    );

    // Before the move: the VIP on A across a whole minute.
    let held_on_a = hold_across_a_minute(&prom, 1.0, 0.0)?;
    println!("  the rules had the VIP on A at {held_on_a}");

    // The failover: A lets go, B takes over and announces it with a
    // gratuitous ARP, as keepalived does, and the client forgets A's MAC.
    // The router's permanent entry keeps pointing at A.
    let moved_at = now();
    a.ns.ip(&["addr", "del", &format!("{VIP}/24"), "dev", IFACE])?;
    b.ns.ip(&["addr", "add", &format!("{VIP}/24"), "dev", IFACE])?;
    let vip4: Ipv4Addr = VIP.parse()?;
    PacketSocket::sender(b)?.send(&frames::arp_request(b.mac, vip4, vip4))?;
    client
        .ns
        .ip(&["neigh", "flush", "to", VIP, "dev", &client.ifname])?;
    poll(
        "B answering on the VIP",
        PATIENCE,
        || Ok(answers(&format!("B {VIP}"))),
        |&n| n > 0,
    )?;

    // After the move: the VIP on B across a whole minute, and B's VIP
    // counters scraped often enough for the 5m rates.
    let held_on_b = hold_across_a_minute(&prom, 0.0, 1.0)?;
    println!("  moved at {moved_at:.3}; the rules had the VIP on B at {held_on_b}");
    for rate in ["receive", "transmit"] {
        poll(
            &format!("B's {rate} rate for the VIP"),
            PATIENCE,
            || {
                prom.query(
                    &format!(
                        "interface_address:aliasstat_{rate}_bits:rate5m{{alias=\"vip\",instance=\"{}\"}}",
                        instance(&B)
                    ),
                    None,
                )
            },
            |s| !s.is_empty(),
        )?;
    }

    // The dashboards' "now": everything up to it scraped and recorded.
    let to = now().floor();
    for plan in [&A, &B] {
        prom.scraped_after(JOB, target(plan), SystemTime::now())?;
    }
    poll(
        "the rules running past the end of the range",
        PATIENCE,
        || rules_ran(&prom),
        |&ran| ran > to + 1.0,
    )?;
    poll(
        "the alerting rules running past the end of the range",
        PATIENCE,
        || {
            Ok(prom
                .query("max(timestamp(ALERTS))", None)?
                .first()
                .map_or(0.0, |s| s.value))
        },
        |&ran| ran > to,
    )?;
    traffic.finish()?;
    println!(
        "  {} datagrams sent; replies: {:?}",
        sent.load(Ordering::SeqCst),
        replied
            .iter()
            .map(|(a, n)| (a.as_str(), n.load(Ordering::SeqCst)))
            .collect::<BTreeMap<_, _>>()
    );

    let range = TimeRange {
        from,
        to,
        scrape_interval: SCRAPE_INTERVAL,
        max_data_points: MAX_DATA_POINTS,
    };
    println!(
        "  time range {from}..{to} ({}s): $__interval {}, $__rate_interval {}",
        range.range(),
        grafana::duration(range.interval()),
        grafana::duration(range.rate_interval())
    );

    let mut facts = facts(moved_at);
    let mut checked = vec![false; facts.len()];
    let mut failures = Vec::new();
    let (mut evaluated, mut empty) = (0, Vec::new());
    for scenario in ["all", "single"] {
        for file in [MAIN, FLEET] {
            let dashboard = grafana::dashboards_dir().join(file);
            let rendered = resolve(&prom, &dashboard, scenario, &range, to)?;
            let queries = grafana::queries(&dashboard, &rendered)?;
            println!("  {scenario} / {file}: {} queries", queries.len());
            for q in &queries {
                let name = format!("{scenario} / {file} / {} {}", q.title, q.ref_id);
                if let Err(e) = grafana::fully_substituted(q) {
                    failures.push(format!("{name}: {e:#}"));
                    continue;
                }
                evaluated += 1;
                let outcome = match evaluate(&prom, q, &range) {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        failures.push(format!("{name}: failed: {e:#}\n    {}", q.expr));
                        continue;
                    }
                };
                match (allowed_empty(file, q), outcome.len()) {
                    (Some(why), 0) => empty.push(format!("{name}: {why}")),
                    (Some(_), n) => failures.push(format!(
                        "{name}: listed as empty in this lab but returned {n} series; remove it from EMPTY_HERE\n    {}\n    {outcome:?}",
                        q.expr
                    )),
                    (None, 0) => failures.push(format!(
                        "{name}: no data, although the lab produced it\n    {}",
                        q.expr
                    )),
                    (None, _) => {}
                }
                for (i, f) in facts.iter().enumerate() {
                    if (f.scenario, f.dashboard, f.title, f.ref_id)
                        == (scenario, file, q.title.as_str(), q.ref_id.as_str())
                    {
                        checked[i] = true;
                        match (f.check)(&outcome) {
                            Ok(()) => println!("    ok: {name}: {}", f.says),
                            Err(e) => failures.push(format!(
                                "{name}: should show {}: {e:#}\n    {}",
                                f.says, q.expr
                            )),
                        }
                    }
                }
            }
        }
    }
    for (f, done) in facts.drain(..).zip(checked) {
        if !done {
            failures.push(format!(
                "no query {} / {} / {} {} for the fact \"{}\"",
                f.scenario, f.dashboard, f.title, f.ref_id, f.says
            ));
        }
    }

    // The rules on real data: all healthy, and exactly the alerts this lab
    // calls for are active (pending: the lab is shorter than any `for`).
    let rules = rules_healthy(&prom, &client.ns)?;
    let active: BTreeSet<Vec<String>> = Outcome::Vector(prom.query("ALERTS", Some(to))?).keys(&[
        "alertname",
        "instance",
        "address",
    ]);
    let expected_alerts: BTreeSet<Vec<String>> = [
        (
            "AliasstatUndocumentedAliasTraffic",
            instance(&A),
            A.undocumented,
        ),
        (
            "AliasstatUndocumentedAliasTraffic",
            instance(&B),
            B.undocumented,
        ),
        ("AliasstatTrafficToAbsentAddress", instance(&A), VIP),
        ("AliasstatDocumentedAliasMissing", String::new(), A.absent),
        ("AliasstatDocumentedAliasMissing", String::new(), B.absent),
    ]
    .into_iter()
    .map(|(n, i, a)| vec![n.to_owned(), i, a.to_owned()])
    .collect();
    if active != expected_alerts {
        failures.push(format!(
            "active alerts: expected {expected_alerts:#?}, got {active:#?}"
        ));
    }

    println!(
        "  {evaluated} queries evaluated, {} empty as expected:",
        empty.len()
    );
    for e in &empty {
        println!("    {e}");
    }
    println!("  {rules} rules healthy; active alerts: {active:?}");
    ensure!(
        failures.is_empty(),
        "{} dashboard checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    a_daemon.stop()?;
    b_daemon.stop()
}
