//! `/api/v1/history` over HTTP against known UDP: per address and in both
//! ranges, the bytes of the points add up to exactly what was sent, a
//! point with bytes has a rate, and the times before the daemon started
//! are null.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Result, ensure};
use lab::{http, poll::Every};
use serde_json::Value;

use super::fixture::{ALIASES, Lab};
use crate::{Outcome, check_eq};

/// Intervals of 2 s are written within a few seconds; a loaded machine
/// gets more.
const WRITTEN: Duration = Duration::from_secs(30);

pub fn run() -> Result<Outcome> {
    let lab = Lab::new()?;
    let ns = &lab.veth.server.ns;
    let listen = SocketAddr::from(([127, 0, 0, 1], lab::prometheus::free_port(ns)?));
    let daemon = lab.start(&["--listen", &listen.to_string()])?;
    lab.udp("shop", 5, 1000, 200)?;
    lab.udp("mail", 3, 500, 50)?;
    for (alias, _, address) in &ALIASES[..2] {
        let sent = lab.sent.borrow()[alias];
        for range in ["1h", "1d"] {
            let path = format!("/api/v1/history?address={address}&range={range}");
            let read = || -> Result<Value> {
                let r = http::get(ns, listen, &path)?;
                ensure!(r.status == 200, "{path}: {} {}", r.status, r.text()?);
                Ok(serde_json::from_slice(&r.body)?)
            };
            let chart = Every(Duration::from_millis(500)).until(
                &format!("{path} to hold every byte sent"),
                WRITTEN,
                read,
                |c| sum(c, "rx_bytes") >= sent.rx.bytes,
            )?;
            check_eq(
                &format!("{alias} {range} bytes (rx, tx)"),
                &(sent.rx.bytes, sent.tx.bytes),
                &(sum(&chart, "rx_bytes"), sum(&chart, "tx_bytes")),
            )?;
            check_chart(&chart, range)?;
        }
        println!("  {alias}: rx {} B, tx {} B", sent.rx.bytes, sent.tx.bytes);
    }
    daemon.stop()?;
    Ok(Outcome::Passed)
}

fn sum(chart: &Value, series: &str) -> u64 {
    values(chart, series)
        .iter()
        .flatten()
        .map(|v| v.as_u64().unwrap_or(0))
        .sum()
}

fn values<'a>(chart: &'a Value, series: &str) -> Vec<Option<&'a Value>> {
    chart[series]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (!v.is_null()).then_some(v))
        .collect()
}

/// The documented shape: 360 points of whole intervals (2 s), null before
/// the daemon's first interval, and bit/s that are the bytes over the time.
fn check_chart(chart: &Value, range: &str) -> Result<()> {
    let step = chart["step_seconds"].as_u64().unwrap_or(0);
    let want_step = if range == "1h" { 10 } else { 240 };
    check_eq(&format!("{range} step_seconds"), &want_step, &step)?;
    check_eq(
        &format!("{range} points"),
        &Some(360),
        &chart["points"].as_u64(),
    )?;
    let rx_bytes = values(chart, "rx_bytes");
    let rx_bits = values(chart, "rx_bits");
    check_eq(&format!("{range} rx_bits length"), &360, &rx_bits.len())?;
    ensure!(
        rx_bytes.first() == Some(&None),
        "{range}: the first point, before the daemon started, is not null: {chart}"
    );
    for (bytes, bits) in rx_bytes.iter().zip(&rx_bits) {
        check_eq(
            &format!("{range}: a point with bytes has a rate"),
            &bytes.is_some(),
            &bits.is_some(),
        )?;
        let (Some(bytes), Some(bits)) = (bytes, bits) else {
            continue;
        };
        let (bytes, bits) = (
            bytes.as_f64().unwrap_or(-1.0),
            bits.as_f64().unwrap_or(-1.0),
        );
        ensure!(
            bytes == 0.0 || bits > 0.0,
            "{range}: {bytes} B at {bits} bit/s: {chart}"
        );
    }
    Ok(())
}
