//! A SIGHUP that documents two undocumented aliases: the series are
//! relabelled, the counts stay, counting goes on, and no count goes
//! backwards at any scrape.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    thread,
    time::{Duration, SystemTime},
};

use anyhow::{Result, ensure};
use lab::{
    Count,
    harness::{Case, Outcome},
    ip,
    prometheus::{Prometheus, unix_seconds},
    traffic,
};

use crate::lab::{
    CLIENT_PORT, CLIENT4, ExporterLab, JOB, PATIENCE, PLAN, SERVER_PORT, alias_counters,
    aliases_after_reload, expected_counters, one,
};

pub const CASE: Case = ("sighup_relabels_series_and_no_count_goes_backwards", run);

fn run() -> Result<Outcome> {
    let lab = ExporterLab::new()?;
    let prom = Prometheus::start(lab.ns(), JOB, &[lab.listen()])?;
    let began = unix_seconds(SystemTime::now());
    let ended = relabel(&lab, &prom)?;
    never_backwards(&prom, began, ended)?;
    drop(prom);
    lab.stop()?;
    Ok(Outcome::Passed)
}

/// Sends the plan, reloads, and checks the new labels on the same counts
/// and on more traffic; returns the time of the last scrape checked.
fn relabel(lab: &ExporterLab, prom: &Prometheus<'_>) -> Result<f64> {
    let mut expected = lab.send_plan()?;
    let at = prom.scraped_after(JOB, lab.listen(), SystemTime::now())?;

    let before = alias_counters(&lab.metrics()?);
    let want = expected_counters(&expected, |p| p.alias.unwrap_or(""));
    ensure!(before == want, "before the reload: {before:#?}");
    for p in PLAN.iter().filter(|p| p.alias.is_none()) {
        let s = one(
            prom,
            &format!(
                "aliasstat_receive_packets_total{{address=\"{}\"}}",
                p.address
            ),
            at,
        )?;
        ensure!(
            !s.labels.contains_key("alias"),
            "{} is undocumented: {:?}",
            p.address,
            s.labels
        );
    }

    // Document the two undocumented aliases.
    lab.served.rewrite(&aliases_after_reload())?;
    let since = lab.daemon.log().len();
    lab.daemon.hangup()?;
    lab.daemon.wait_for_line(
        since,
        &format!(
            "SIGHUP: reloaded 5 documented aliases from {}",
            lab.served.config.display()
        ),
        PATIENCE,
    )?;
    let renamed = |m: &BTreeMap<(String, String), (String, f64)>| {
        m.iter()
            .filter(|((_, a), _)| *a == "10.74.0.4" || *a == "fd00:74::4")
            .all(|(_, (alias, _))| alias.starts_with("db-"))
    };
    // The log line comes just before the new file is in use.
    let deadline = std::time::Instant::now() + PATIENCE;
    let after = loop {
        let now = alias_counters(&lab.metrics()?);
        if renamed(&now) || std::time::Instant::now() >= deadline {
            break now;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let want = expected_counters(&expected, |p| p.alias_after_reload);
    ensure!(
        after == want,
        "after the reload: expected {want:#?}\ngot {after:#?}"
    );
    println!("  /metrics after SIGHUP: alias labels db-v4 and db-v6, the same counts");

    // Prometheus sees the new label on the same counts ...
    let reloaded_at = prom.scraped_after(JOB, lab.listen(), SystemTime::now())?;
    for p in PLAN.iter().filter(|p| p.alias.is_none()) {
        let (rx, _) = expected[&ip(p.address)];
        let s = one(
            prom,
            &format!(
                "aliasstat_receive_packets_total{{address=\"{}\"}}",
                p.address
            ),
            reloaded_at,
        )?;
        ensure!(
            s.labels.get("alias").map(String::as_str) == Some(p.alias_after_reload)
                && s.value == rx.packets as f64,
            "{} after the reload: {s:#?}",
            p.address
        );
    }
    // ... and keeps counting on it.
    let client = traffic::udp_socket(
        &lab.veth.client.ns,
        SocketAddr::new(ip(CLIENT4), CLIENT_PORT),
    )?;
    let db4 = ip("10.74.0.4");
    let server = traffic::udp_socket(&lab.veth.server.ns, SocketAddr::new(db4, SERVER_PORT))?;
    for request in [11, 22] {
        traffic::exchange(&client, &server, request, 33)?;
        let (rx, tx) = expected.get_mut(&db4).expect("planned");
        *rx += Count::datagram(db4, request);
        *tx += Count::datagram(db4, 33);
    }
    let ended = prom.scraped_after(JOB, lab.listen(), SystemTime::now())?;
    let (rx, tx) = expected[&db4];
    for (name, value) in [
        ("aliasstat_receive_bytes_total", rx.bytes),
        ("aliasstat_transmit_bytes_total", tx.bytes),
    ] {
        let s = one(prom, &format!("{name}{{address=\"10.74.0.4\"}}"), ended)?;
        ensure!(
            s.value == value as f64 && s.labels.get("alias").map(String::as_str) == Some("db-v4"),
            "{name} for 10.74.0.4 after more traffic: {s:#?}"
        );
    }

    Ok(ended)
}

fn never_backwards(prom: &Prometheus<'_>, began: f64, ended: f64) -> Result<()> {
    // No count went backwards at any scrape: each series on its own, and
    // each address across its relabelling (old series, then new).
    let window = (ended - began).ceil() as u64 + 5;
    let raw = prom.query_matrix(
        &format!("{{__name__=~\"aliasstat_.+_total\",job=\"{JOB}\"}}[{window}s]"),
        ended,
    )?;
    type Key = (String, String, String, String);
    let mut per_address: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
    let mut samples = 0;
    for series in &raw {
        samples += series.values.len();
        for pair in series.values.windows(2) {
            ensure!(
                pair[1].1 >= pair[0].1,
                "{:?} went from {} to {} between {} and {}",
                series.labels,
                pair[0].1,
                pair[1].1,
                pair[0].0,
                pair[1].0
            );
        }
        let key = |k: &str| series.labels.get(k).cloned().unwrap_or_default();
        per_address
            .entry((
                key("__name__"),
                key("interface"),
                key("direction"),
                key("address"),
            ))
            .or_default()
            .extend(&series.values);
    }
    for ((name, _, _, address), values) in &mut per_address {
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in values.windows(2) {
            ensure!(
                pair[1].1 >= pair[0].1,
                "{name} for {address} went from {} to {} across series at {}",
                pair[0].1,
                pair[1].1,
                pair[1].0
            );
        }
    }
    let relabelled = raw
        .iter()
        .filter(|s| s.labels.get("address").map(String::as_str) == Some("10.74.0.4"))
        .filter(|s| {
            s.labels.get("__name__").map(String::as_str) == Some("aliasstat_receive_packets_total")
        })
        .count();
    ensure!(
        relabelled == 2,
        "10.74.0.4 should have had two series (alias \"\" then \"db-v4\"): {raw:#?}"
    );
    println!(
        "  {} counter series, {samples} samples over {window} s: none went backwards",
        raw.len()
    );
    Ok(())
}
