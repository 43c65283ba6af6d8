//! `report --prometheus`: against a Prometheus whose TSDB was backfilled
//! (`promtool tsdb create-blocks-from openmetrics`) with counter series
//! made here, and against a live run that a real Prometheus scraped.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, ensure};
use lab::{Count, Netns, certs::Certs, daemon::binary, prometheus::Prometheus, scratch::Scratch};
use serde_json::Value;

use super::fixture::{self, InOut, Lab};
use crate::{Outcome, check_eq};

const STEP: i64 = 300;
/// Bytes received per step by each address, step by step: the hand-made
/// series. Twelve steps: an hour.
const SHOP_RX: [u64; 12] = [
    3000, 0, 600, 90_000, 1200, 1200, 30, 0, 45_000, 7, 300, 6000,
];
const DB_RX: [u64; 12] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];

/// `aliasstat report --format json` run in `ns` with `args`.
fn report_in(ns: &Netns, args: &[&str]) -> Result<Value> {
    let out = ns
        .exec(binary()?)
        .arg("report")
        .args(["--format", "json"])
        .args(args)
        .output()
        .context("failed to run aliasstat report")?;
    ensure!(
        out.status.success(),
        "report {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// OpenMetrics text: one sample a minute for an hour from `t0`, rising
/// within each step by that step's bytes (packets: bytes / 10, rounded
/// up), and `aliasstat_alias_info` for the two aliases.
fn openmetrics(t0: i64) -> String {
    let series = [
        ("shop", "10.96.0.10", &SHOP_RX),
        ("db", "10.96.0.12", &DB_RX),
    ];
    let labels = |alias: &str, address: &str| {
        format!(
            r#"{{address="{address}",alias="{alias}",instance="h1:9864",interface="eth0",job="aliasstat"}}"#
        )
    };
    let mut text = String::new();
    for (family, scale) in [
        ("aliasstat_receive_bytes", 1),
        ("aliasstat_receive_packets", 10),
    ] {
        text += &format!("# TYPE {family} counter\n");
        for (alias, address, steps) in series {
            let mut value = 0u64;
            for minute in 0..=60i64 {
                if minute > 0 {
                    let step = &steps[((minute - 1) / 5) as usize];
                    // The whole step's count arrives in its third minute.
                    if (minute - 1) % 5 == 2 {
                        value += step.div_ceil(scale);
                    }
                }
                text += &format!(
                    "{family}_total{} {value} {}\n",
                    labels(alias, address),
                    t0 + minute * 60
                );
            }
        }
    }
    text += "# TYPE aliasstat_alias_info gauge\n";
    for (alias, owner, address) in [("shop", "web", "10.96.0.10"), ("db", "data", "10.96.0.12")] {
        for minute in 0..=60i64 {
            text += &format!(
                "aliasstat_alias_info{{address=\"{address}\",alias=\"{alias}\",instance=\"h1:9864\",job=\"aliasstat\",owner=\"{owner}\",purpose=\"\"}} 1 {}\n",
                t0 + minute * 60
            );
        }
    }
    text + "# EOF\n"
}

/// The 1-based ⌈p·N/100⌉-th smallest step rate, in bits per second.
fn by_hand(steps: &[u64], p: usize) -> f64 {
    let mut rates: Vec<u64> = steps.to_vec();
    rates.sort_unstable();
    let rank = (p * rates.len()).div_ceil(100);
    rates[rank - 1] as f64 * 8.0 / STEP as f64
}

pub fn backfill() -> Result<Outcome> {
    let ns = Netns::new("prom")?;
    ns.ip(&["link", "set", "lo", "up"])?;
    let t0 = start_of_series()?;
    let dir = Scratch::new("backfill")?;
    let file = dir.write("series.om", &openmetrics(t0))?;
    let prom = Prometheus::start_backfilled(&ns, &file)?;
    check_reports(&ns, &format!("http://{}", prom.web()), &[], t0)?;
    Ok(Outcome::Passed)
}

/// The same series from a Prometheus that serves its API with TLS from a
/// private CA and basic auth: `--user`, `--password-file` and `--ca-file`
/// reach it, and without the password or the CA the report fails and says
/// why.
pub fn behind_tls() -> Result<Outcome> {
    const USER: &str = "reports";
    const PASSWORD: &str = "billing day";
    let ns = Netns::new("promtls")?;
    ns.ip(&["link", "set", "lo", "up"])?;
    let t0 = start_of_series()?;
    let dir = Scratch::new("backfill-tls")?;
    let file = dir.write("series.om", &openmetrics(t0))?;
    let certs = Certs::new()?;
    let web_config = dir.write(
        "web.yml",
        &certs.web_config("", USER, &bcrypt::hash(PASSWORD, 4)?),
    )?;
    let password = dir.write("password", &format!("{PASSWORD}\n"))?;
    let wrong = dir.write("wrong", "not the password\n")?;
    let prom = Prometheus::start_backfilled_behind(&ns, &file, &web_config)?;
    let url = format!("https://{}", prom.web());
    let ca = certs.ca.display().to_string();
    let (password, wrong) = (password.display().to_string(), wrong.display().to_string());
    check_reports(
        &ns,
        &url,
        &[
            "--user",
            USER,
            "--password-file",
            &password,
            "--ca-file",
            &ca,
        ],
        t0,
    )?;
    for (what, args, says) in [
        (
            "a wrong password",
            vec!["--user", USER, "--password-file", &wrong, "--ca-file", &ca],
            "401",
        ),
        (
            "no --ca-file (the system's CAs do not know the lab's)",
            vec!["--user", USER, "--password-file", &password],
            "TLS with",
        ),
    ] {
        let (from, to) = (fmt(t0), fmt(t0 + 3600));
        let out = ns
            .exec(binary()?)
            .args(["report", "--prometheus", &url, "--from", &from, "--to", &to])
            .args(args)
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("  {what}: {}", stderr.trim());
        ensure!(
            !out.status.success() && stderr.contains(says),
            "report with {what} should fail saying {says:?}; it exited {} with {stderr:?}",
            out.status
        );
    }
    Ok(Outcome::Passed)
}

/// Three hours ago, on a step: the backfilled hour lies wholly in the past.
fn start_of_series() -> Result<i64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    Ok((now - 3 * 3600) / STEP * STEP)
}

/// The reports by alias (p95) and by owner (p50) over the hour of
/// [`openmetrics`] from the Prometheus at `url`, asked with `access`,
/// against the sums and percentiles worked out here.
fn check_reports(ns: &Netns, url: &str, access: &[&str], t0: i64) -> Result<()> {
    let (from, to) = (fmt(t0), fmt(t0 + 3600));
    for (p, by, rows) in [
        ("95", "alias", vec![("db", &DB_RX), ("shop", &SHOP_RX)]),
        ("50", "owner", vec![("data", &DB_RX), ("web", &SHOP_RX)]),
    ] {
        let args = [
            "--prometheus",
            url,
            "--from",
            &from,
            "--to",
            &to,
            "--by",
            by,
            "--percentile",
            p,
            "--direction",
            "in",
        ];
        let got = report_in(ns, &[&args[..], access].concat())?;
        println!("  {by} p{p}: {got}");
        check_eq(
            "steps with samples",
            &(12, 12),
            &(
                got["intervals"]["sampled"].as_u64().unwrap_or(0),
                got["intervals"]["total"].as_u64().unwrap_or(0),
            ),
        )?;
        let want: BTreeMap<String, (u64, u64, f64)> = rows
            .iter()
            .map(|(name, steps)| {
                let bytes = steps.iter().sum::<u64>();
                let packets = steps.iter().map(|s| s.div_ceil(10)).sum::<u64>();
                (
                    (*name).to_owned(),
                    (
                        packets,
                        bytes,
                        by_hand(steps.as_slice(), p.parse().unwrap()),
                    ),
                )
            })
            .collect();
        let have: BTreeMap<String, (u64, u64, f64)> = got["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let name = r[by].as_str().unwrap_or_default().to_owned();
                (
                    name,
                    (
                        r["in"]["packets"].as_u64().unwrap_or(0),
                        r["in"]["bytes"].as_u64().unwrap_or(0),
                        r["percentile_bits_per_second"].as_f64().unwrap_or(-1.0),
                    ),
                )
            })
            .collect();
        check_eq(&format!("--by {by}: in packets, bytes, p{p}"), &want, &have)?;
    }
    Ok(())
}

/// `2026-11-05T12:30:00Z` of Unix seconds, as `report --from` takes it.
fn fmt(seconds: i64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{seconds}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub fn live() -> Result<Outcome> {
    let lab = Lab::new()?;
    let daemon = lab.start(&[])?;
    // An address has series once the map has an entry for it: one
    // exchange each first, which the period below leaves out.
    for alias in ["shop", "mail", "db"] {
        lab.udp(alias, 1, 10, 10)?;
    }
    let before = lab.sent.borrow()["shop"];
    let target: SocketAddr = "127.0.0.1:9864".parse()?;
    let prom = Prometheus::start(&lab.veth.server.ns, "aliasstat", &[target])?;
    let scraped = prom.scraped_after("aliasstat", target, SystemTime::now())?;
    // The period starts on a step after that scrape, where the daemon
    // also takes a sample; the traffic comes after it.
    let from_s = (scraped as i64 / 2 + 2) * 2;
    while unix_now()? < from_s as f64 + 0.5 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    lab.udp("shop", 20, 1000, 100)?;
    // UDP only: the TCP oracle wants no other TCP socket in the
    // namespace, and Prometheus's scrapes are TCP.
    lab.udp("db", 3, 1400, 0)?;
    lab.udp("mail", 7, 300, 30)?;
    prom.scraped_after("aliasstat", target, SystemTime::now())?;
    daemon.stop()?;
    let (from, to) = (fmt(from_s), fmt((unix_now()? as i64 / 2 + 2) * 2));
    let url = format!("http://{}", prom.web());
    let state = lab.state.path().to_str().context("UTF-8 path")?;
    let from_prometheus = report_in(
        &lab.veth.server.ns,
        &[
            "--prometheus",
            &url,
            "--step",
            "2s",
            "--from",
            &from,
            "--to",
            &to,
        ],
    )?;
    let local = report_in(
        &lab.veth.server.ns,
        &["--state-dir", state, "--from", &from, "--to", &to],
    )?;
    let totals = |v: &Value| -> BTreeMap<String, InOut> {
        fixture::rows(v, "alias")
            .into_iter()
            .filter(|(a, _)| !a.is_empty())
            .collect()
    };
    println!("  prometheus: {from_prometheus}\n  local: {local}");
    check_eq(
        "totals, Prometheus vs the local store",
        &totals(&local),
        &totals(&from_prometheus),
    )?;
    let shop = totals(&local).get("shop").copied().unwrap_or_default();
    let after = lab.sent.borrow()["shop"];
    let sent = InOut {
        rx: Count::new(
            after.rx.packets - before.rx.packets,
            after.rx.bytes - before.rx.bytes,
        ),
        tx: Count::new(
            after.tx.packets - before.tx.packets,
            after.tx.bytes - before.tx.bytes,
        ),
    };
    check_eq("shop's totals vs what was sent in the period", &sent, &shop)?;
    Ok(Outcome::Passed)
}

fn unix_now() -> Result<f64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64())
}
