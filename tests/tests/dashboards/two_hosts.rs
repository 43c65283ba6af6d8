//! The one case: two hosts, a VIP that moves between them, and both
//! dashboards and both rule files on what Prometheus scraped meanwhile.

use std::{collections::BTreeSet, time::SystemTime};

use anyhow::{Result, ensure};
use lab::{
    Daemon,
    cgroups::CgroupLab,
    daemon::Launch,
    grafana::{self, TimeRange},
    harness::Outcome,
    lan::Lan,
    link::Ipv6,
    poll::QUERIES,
    prometheus::Prometheus,
    served::{Listen, Served},
};

use crate::{
    answer::Answer,
    fleet::{self, Flows, now},
    plan::{A, B, JOB, MAX_DATA_POINTS, PATIENCE, SCRAPE_INTERVAL, VIP, instance, target},
    queries,
};

pub fn run() -> Result<Outcome> {
    let recording = fleet::repo_file("recording.yml")?;
    let alerts = fleet::repo_file("alerts.yml")?;
    let lan = Lan::new(&["a", "b", "router"], Ipv6::Off)?;
    let (a, b) = (&lan.servers[0], &lan.servers[1]);
    fleet::set_up(&lan)?;
    // Each serves on its host's LAN address, for Prometheus.
    let a_served = Served::new("a", a, &A.file(), Listen::At(target(&A)))?;
    let b_served = Served::new("b", b, &B.file(), Listen::At(target(&B)))?;
    // `ip netns exec` remounts /sys, so the daemons find no cgroup2 mount
    // of their own: they count services on the lab's, for the service
    // panels.
    let cgroups = CgroupLab::new()?;
    let launch = Launch {
        args: vec!["--cgroup-root".into(), cgroups.root().into()],
        ..Launch::default()
    };
    let a_daemon = Daemon::start_with(&a_served.daemon_config(a), &launch)?;
    let b_daemon = Daemon::start_with(&b_served.daemon_config(b), &launch)?;

    // The dashboards' time range starts here: nothing was scraped before.
    let from = now().floor();
    let prom = Prometheus::start_with_rules(
        &lan.client.ns,
        JOB,
        &[target(&A), target(&B)],
        &[&recording, &alerts],
    )?;
    let flows = Flows::start(&lan)?;

    // Before the move: the VIP on A across a whole minute.
    let held_on_a = fleet::hold_across_a_minute(&prom, 1.0, 0.0)?;
    println!("  the rules had the VIP on A at {held_on_a}");
    let moved_at = fleet::move_vip(&lan, &flows)?;
    // After the move: the VIP on B across a whole minute, and B's VIP
    // counters scraped often enough for the 5m rates.
    let held_on_b = fleet::hold_across_a_minute(&prom, 0.0, 1.0)?;
    println!("  moved at {moved_at:.3}; the rules had the VIP on B at {held_on_b}");
    for rate in ["receive", "transmit"] {
        QUERIES.until(
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
    let to = settle(&prom)?;
    flows.finish()?;

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
    let mut failures = queries::check_all(&prom, &range, moved_at)?;
    failures.extend(check_rules(&prom, &lan, to)?);
    ensure!(
        failures.is_empty(),
        "{} dashboard checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    a_daemon.stop()?;
    b_daemon.stop()?;
    Ok(Outcome::Passed)
}

/// The dashboards' "now": everything up to it scraped and recorded.
fn settle(prom: &Prometheus<'_>) -> Result<f64> {
    let to = now().floor();
    for plan in [&A, &B] {
        prom.scraped_after(JOB, target(plan), SystemTime::now())?;
    }
    QUERIES.until(
        "the rules running past the end of the range",
        PATIENCE,
        || fleet::rules_ran(prom),
        |&ran| ran > to + 1.0,
    )?;
    QUERIES.until(
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
    Ok(to)
}

/// The rules on real data: all healthy, and exactly the alerts this lab
/// calls for are active (pending: the lab is shorter than any `for`).
fn check_rules(prom: &Prometheus<'_>, lan: &Lan, to: f64) -> Result<Option<String>> {
    let rules = queries::rules_healthy(prom, &lan.client.ns)?;
    let active: BTreeSet<Vec<String>> =
        Answer::Vector(prom.query("ALERTS", Some(to))?).keys(&["alertname", "instance", "address"]);
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
    println!("  {rules} rules healthy; active alerts: {active:?}");
    Ok((active != expected_alerts)
        .then(|| format!("active alerts: expected {expected_alerts:#?}, got {active:#?}")))
}
