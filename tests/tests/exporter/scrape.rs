//! One Prometheus server scraping the daemon after known traffic: exact
//! per-address counts in both directions and both families, and every
//! metric family with its labels.

use std::{collections::BTreeSet, net::SocketAddr, time::SystemTime};

use aliasstat::bpf::memory::Shape;
use anyhow::{Result, ensure};
use lab::{
    Count,
    harness::{Case, Outcome},
    ip,
    prometheus::{Prometheus, Sample, unix_seconds},
};

use crate::lab::{Expected, ExporterLab, IDLE, IFACE, JOB, PLAN, STANDBY, expect_sample, one};

pub const CASE: Case = ("prometheus_scrapes_exact_counts_and_every_family", run);

fn run() -> Result<Outcome> {
    let lab = ExporterLab::new()?;
    let prom = Prometheus::start(lab.ns(), JOB, &[lab.listen()])?;
    let expected = lab.send_plan()?;
    let non_ip = lab.send_non_ip()?;
    // Everything sent has been counted; the first scrape after this sees it.
    let at = prom.scraped_after(JOB, lab.listen(), SystemTime::now())?;
    let scraped = Scraped {
        prom: &prom,
        at,
        listen: lab.listen(),
    };
    address_counts(&scraped, &expected)?;
    inventory(&scraped)?;
    buckets(&scraped, non_ip)?;
    self_metrics(&scraped, &lab)?;
    drop(prom);
    lab.stop()?;
    Ok(Outcome::Passed)
}

/// The scrape the checks read: Prometheus's view at `at`.
struct Scraped<'a> {
    prom: &'a Prometheus<'a>,
    at: f64,
    listen: SocketAddr,
}

impl Scraped<'_> {
    fn q(&self, expr: &str) -> Result<Sample> {
        one(self.prom, expr, self.at)
    }

    fn check(&self, what: &str, expr: &str, labels: &[(&str, &str)], value: f64) -> Result<()> {
        expect_sample(what, &self.q(expr)?, labels, value, self.listen)
    }
}

/// Every planned address's counters, the per-family totals, and nothing for
/// the primaries that were never sent to.
fn address_counts(s: &Scraped<'_>, expected: &Expected) -> Result<()> {
    for p in &PLAN {
        let address = ip(p.address);
        let (rx, tx) = expected[&address];
        let labels = [
            ("interface", IFACE),
            ("address", p.address),
            ("alias", p.alias.unwrap_or("")),
        ];
        for (family, count) in [("receive", rx), ("transmit", tx)] {
            for (unit, value) in [("packets", count.packets), ("bytes", count.bytes)] {
                let name = format!("aliasstat_{family}_{unit}_total");
                s.check(
                    &name,
                    &format!("{name}{{address=\"{address}\"}}"),
                    &labels,
                    value as f64,
                )?;
            }
        }
        println!(
            "  {:<11} alias {:<7} rx {rx}, tx {tx}: as scraped by Prometheus",
            p.address,
            p.alias.unwrap_or("-")
        );
    }
    // Per family, the totals over this lab's addresses: nothing else was
    // credited to them.
    for v4 in [true, false] {
        let (rx, tx): (Count, Count) = expected
            .iter()
            .filter(|(a, _)| a.is_ipv4() == v4)
            .fold(Default::default(), |(r, t), (_, (rx, tx))| {
                (r + *rx, t + *tx)
            });
        let pattern = if v4 { r"10\\.74\\..+" } else { "fd00:74::.+" };
        for (name, value) in [
            ("aliasstat_receive_packets_total", rx.packets),
            ("aliasstat_receive_bytes_total", rx.bytes),
            ("aliasstat_transmit_packets_total", tx.packets),
            ("aliasstat_transmit_bytes_total", tx.bytes),
        ] {
            let sum = s.q(&format!("sum({name}{{address=~\"{pattern}\"}})"))?;
            ensure!(
                sum.value == value as f64,
                "sum of {name} over {pattern}: expected {value}, got {}",
                sum.value
            );
        }
    }
    for idle in IDLE {
        let series = s.prom.query(
            &format!("{{__name__=~\"aliasstat_(receive|transmit)_.+\",address=\"{idle}\"}}"),
            Some(s.at),
        )?;
        ensure!(series.is_empty(), "{idle} was never sent to: {series:#?}");
    }

    Ok(())
}

fn inventory(s: &Scraped<'_>) -> Result<()> {
    // Presence, with the interface and IFA_LABEL; absent documented
    // addresses at 0 with the interface the file names.
    for (address, label) in [
        ("10.74.0.2", "lab-srv"),
        ("10.74.0.3", "lab-srv:1"),
        ("10.74.0.4", "lab-srv"),
        ("fd00:74::2", ""),
        ("fd00:74::3", ""),
        ("fd00:74::4", ""),
    ] {
        s.check(
            "aliasstat_address_present",
            &format!("aliasstat_address_present{{address=\"{address}\"}}"),
            &[("interface", IFACE), ("address", address), ("label", label)],
            1.0,
        )?;
    }
    s.check(
        "aliasstat_address_present (absent)",
        &format!("aliasstat_address_present{{address=\"{STANDBY}\"}}"),
        &[("interface", IFACE), ("address", STANDBY)],
        0.0,
    )?;
    for (address, documented) in [
        ("10.74.0.2", 0.0),
        ("10.74.0.3", 1.0),
        ("10.74.0.4", 0.0),
        ("fd00:74::2", 0.0),
        ("fd00:74::3", 1.0),
        ("fd00:74::4", 0.0),
        (STANDBY, 1.0),
    ] {
        s.check(
            "aliasstat_address_documented",
            &format!("aliasstat_address_documented{{address=\"{address}\"}}"),
            &[("address", address)],
            documented,
        )?;
    }
    let info = s.prom.query("aliasstat_alias_info", Some(s.at))?;
    ensure!(info.len() == 3, "three documented aliases: {info:#?}");
    for (alias, address, owner, purpose) in [
        (
            "web-v4",
            "10.74.0.3",
            "web-team",
            "TLS vhost for shop.example",
        ),
        ("web-v6", "fd00:74::3", "web-team", ""),
        (
            "standby",
            STANDBY,
            "lb-team",
            "keepalived VIP held by the peer",
        ),
    ] {
        s.check(
            "aliasstat_alias_info",
            &format!("aliasstat_alias_info{{alias=\"{alias}\"}}"),
            &[
                ("alias", alias),
                ("address", address),
                ("owner", owner),
                ("purpose", purpose),
            ],
            1.0,
        )?;
    }

    Ok(())
}

fn buckets(s: &Scraped<'_>, non_ip: Count) -> Result<()> {
    // The buckets: exactly the LLDP frames in, nothing out, no overflow.
    for (name, direction, value) in [
        ("aliasstat_non_ip_packets_total", "receive", non_ip.packets),
        ("aliasstat_non_ip_bytes_total", "receive", non_ip.bytes),
        ("aliasstat_non_ip_packets_total", "transmit", 0),
        ("aliasstat_non_ip_bytes_total", "transmit", 0),
        ("aliasstat_overflow_packets_total", "receive", 0),
        ("aliasstat_overflow_bytes_total", "receive", 0),
        ("aliasstat_overflow_packets_total", "transmit", 0),
        ("aliasstat_overflow_bytes_total", "transmit", 0),
    ] {
        s.check(
            name,
            &format!("{name}{{direction=\"{direction}\"}}"),
            &[("interface", IFACE), ("direction", direction)],
            value as f64,
        )?;
    }
    println!("  non_ip receive {non_ip}; overflow 0 both ways");
    // Far below the foreign-series budget, nothing is summed into "other".
    let other = s
        .prom
        .query("{__name__=~\"aliasstat_foreign_other_.+\"}", Some(s.at))?;
    ensure!(other.is_empty(), "foreign_other series: {other:#?}");

    // Foreign series: every address series whose address neither the host
    // holds nor the file documents (multicast, link housekeeping).
    let addresses = |expr: &str| -> Result<BTreeSet<String>> {
        Ok(s.prom
            .query(expr, Some(s.at))?
            .into_iter()
            .map(|s| s.labels.get("address").cloned().unwrap_or_default())
            .collect())
    };
    let known = addresses("aliasstat_address_present == 1 or aliasstat_address_documented == 1")?;
    let series = s.prom.query(
        "{__name__=~\"aliasstat_(receive|transmit)_packets_total\"}",
        Some(s.at),
    )?;
    let foreign = series
        .iter()
        .filter(|s| !known.contains(s.labels.get("address").map_or("", String::as_str)))
        .count();
    s.check(
        "aliasstat_foreign_series",
        "aliasstat_foreign_series",
        &[],
        foreign as f64,
    )?;
    s.check(
        "aliasstat_foreign_series_limit",
        "aliasstat_foreign_series_limit",
        &[],
        256.0,
    )?;
    let v4 = series
        .iter()
        .filter(|s| {
            s.labels
                .get("address")
                .is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        })
        .count();
    let capacity = f64::from(common::names::DEFAULT_ADDRESS_CAPACITY);
    for (name, map, value) in [
        // One map entry per (interface, direction, address) series, in
        // its family's map.
        ("aliasstat_map_entries", "addresses_v4", v4 as f64),
        (
            "aliasstat_map_entries",
            "addresses_v6",
            (series.len() - v4) as f64,
        ),
        // non_ip and overflow, each way, for the one interface.
        ("aliasstat_map_entries", "other", 4.0),
        ("aliasstat_map_capacity", "addresses_v4", capacity),
        ("aliasstat_map_capacity", "addresses_v6", capacity),
        (
            "aliasstat_map_capacity",
            "other",
            f64::from(common::names::OTHER_CAPACITY),
        ),
        // The kernel's own figure, as the formula predicts it.
        (
            "aliasstat_map_memory_bytes",
            "addresses_v4",
            per_cpu_hash_bytes::<common::Addr4Key>(common::names::DEFAULT_ADDRESS_CAPACITY)?,
        ),
        (
            "aliasstat_map_memory_bytes",
            "addresses_v6",
            per_cpu_hash_bytes::<common::Addr6Key>(common::names::DEFAULT_ADDRESS_CAPACITY)?,
        ),
        (
            "aliasstat_map_memory_bytes",
            "other",
            per_cpu_hash_bytes::<common::OtherKey>(common::names::OTHER_CAPACITY)?,
        ),
    ] {
        s.check(
            &format!("{name}{{map={map}}}"),
            &format!("{name}{{map=\"{map}\"}}"),
            &[("map", map)],
            value,
        )?;
    }
    println!(
        "  {} address series ({foreign} foreign), as many map entries",
        series.len()
    );
    Ok(())
}

/// What the kernel charges for a per-CPU hash of `K` to counters on this
/// host, by aliasstat's formula.
fn per_cpu_hash_bytes<K>(capacity: u32) -> Result<f64> {
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    let shape = Shape {
        map_type: aya::maps::MapType::PerCpuHash,
        key_size: size_of::<K>() as u32,
        value_size: size_of::<common::Counters>() as u32,
        max_entries: capacity,
        flags: 0,
    };
    let bytes = shape
        .kernel_bytes(cpus as u64)
        .expect("the formula knows per-CPU hashes");
    Ok(bytes as f64)
}

fn self_metrics(s: &Scraped<'_>, lab: &ExporterLab) -> Result<()> {
    for direction in ["receive", "transmit"] {
        s.check(
            "aliasstat_program_attached",
            &format!("aliasstat_program_attached{{direction=\"{direction}\"}}"),
            &[
                ("interface", IFACE),
                ("hook", "tc"),
                ("direction", direction),
            ],
            1.0,
        )?;
    }
    ensure!(
        s.prom
            .query("aliasstat_program_attached", Some(s.at))?
            .len()
            == 2,
        "one attachment each way"
    );
    s.check(
        "aliasstat_build_info",
        "aliasstat_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    )?;
    s.check(
        "aliasstat_config_last_reload_success",
        "aliasstat_config_last_reload_success",
        &[],
        1.0,
    )?;
    // Loaded at start: between the moments before and after starting it.
    let (before, after) = (
        unix_seconds(lab.started.0).floor(),
        unix_seconds(lab.started.1).ceil(),
    );
    let loaded = s.q("aliasstat_config_last_reload_timestamp_seconds")?.value;
    ensure!(
        (before..=after).contains(&loaded),
        "config loaded at {loaded}, not within the start [{before}, {after}]"
    );
    let took = s.q("aliasstat_scrape_duration_seconds")?.value;
    ensure!(took >= 0.0, "scrape duration {took}");
    // process_start_time_seconds is in clock ticks since boot, rounded.
    let process_start = s.q("process_start_time_seconds")?.value;
    ensure!(
        (before - 1.0..=after + 1.0).contains(&process_start),
        "process started at {process_start}, not within [{before}, {after}]"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    ] {
        let value = s.q(name)?.value;
        ensure!(value > 0.0, "{name} = {value}");
    }
    ensure!(s.q("process_cpu_seconds_total")?.value >= 0.0);
    ensure!(s.q(&format!("up{{job=\"{JOB}\"}}"))?.value == 1.0);
    Ok(())
}
