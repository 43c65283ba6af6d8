//! `aliasstat top --once`: the rates of one interval as plain text or
//! JSON, in raw numbers, for scripts and pipes.

use std::{net::IpAddr, time::Duration};

use common::Counters;
use serde::Serialize;

use super::state::{Line, Rate};
use crate::{commands::table, inventory::State};

pub fn table(lines: &[&Line]) -> String {
    let dash = || "-".to_owned();
    let mut out = vec![[
        "NAME".to_owned(),
        "ADDRESS".into(),
        "INTERFACE".into(),
        "STATE".into(),
        "OWNER".into(),
        "RX_BPS".into(),
        "TX_BPS".into(),
        "RX_PPS".into(),
        "TX_PPS".into(),
        "RX_BYTES".into(),
        "TX_BYTES".into(),
        "RX_PACKETS".into(),
        "TX_PACKETS".into(),
    ]];
    out.extend(lines.iter().map(|l| {
        let e = &l.entry;
        let r = l.rates.unwrap_or_default();
        [
            l.name(),
            e.address.to_string(),
            e.interface.clone().unwrap_or_else(dash),
            e.state.to_string(),
            e.owner
                .clone()
                .filter(|o| !o.is_empty())
                .unwrap_or_else(dash),
            format!("{:.0}", r.rx.bits),
            format!("{:.0}", r.tx.bits),
            format!("{:.1}", r.rx.packets),
            format!("{:.1}", r.tx.packets),
            e.rx.bytes.to_string(),
            e.tx.bytes.to_string(),
            e.rx.packets.to_string(),
            e.tx.packets.to_string(),
        ]
    }));
    let mut right = [true; 13];
    right[..5].fill(false);
    table::render(&out, right)
}

#[derive(Serialize)]
struct Report<'a> {
    interval_seconds: f64,
    aliases: Vec<Alias<'a>>,
}

#[derive(Serialize)]
struct Alias<'a> {
    address: IpAddr,
    alias: Option<&'a str>,
    state: State,
    interface: Option<&'a str>,
    owner: Option<&'a str>,
    rx: Direction,
    tx: Direction,
}

#[derive(Serialize)]
struct Direction {
    bits_per_second: f64,
    packets_per_second: f64,
    /// The counters themselves, at the second sample.
    bytes: u64,
    packets: u64,
}

impl Direction {
    fn new(rate: Rate, counts: Counters) -> Self {
        Self {
            bits_per_second: rate.bits,
            packets_per_second: rate.packets,
            bytes: counts.bytes,
            packets: counts.packets,
        }
    }
}

/// `{"interval_seconds":…,"aliases":[…]}` over `elapsed`, the time between
/// the two samples.
pub fn json(lines: &[&Line], elapsed: Duration) -> String {
    let report = Report {
        interval_seconds: elapsed.as_secs_f64(),
        aliases: lines
            .iter()
            .map(|l| {
                let e = &l.entry;
                let r = l.rates.unwrap_or_default();
                Alias {
                    address: e.address,
                    alias: e.alias.as_deref(),
                    state: e.state,
                    interface: e.interface.as_deref(),
                    owner: e.owner.as_deref(),
                    rx: Direction::new(r.rx, e.rx),
                    tx: Direction::new(r.tx, e.tx),
                }
            })
            .collect(),
    };
    serde_json::to_string(&report).expect("plain structs always serialize")
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::top::state::{Sample, View, lines, tests::entry};

    fn sampled() -> Vec<Line> {
        let t0 = Instant::now();
        let at = |k: u64| Sample {
            at: t0 + Duration::from_secs(2 * k),
            entries: vec![
                entry(
                    "192.0.2.1",
                    Some("web"),
                    State::Documented,
                    (k * 400, k * 411_200),
                    (0, 0),
                ),
                entry(
                    "192.0.2.9",
                    None,
                    State::Undocumented,
                    (k * 3, k * 300),
                    (k, 100 * k),
                ),
            ],
        };
        lines(Some(&at(1)), &at(2))
    }

    #[test]
    fn table_has_raw_numbers() {
        let lines = sampled();
        assert_eq!(
            table(&View::default().apply(&lines)),
            "\
NAME       ADDRESS    INTERFACE  STATE         OWNER      RX_BPS  TX_BPS  RX_PPS  TX_PPS  RX_BYTES  TX_BYTES  RX_PACKETS  TX_PACKETS
web        192.0.2.1  eth0       documented    team-web  1644800       0   200.0     0.0    822400         0         800           0
192.0.2.9  192.0.2.9  eth0       undocumented  -            1200     400     1.5     0.5       600       200           6           2
"
        );
    }

    #[test]
    fn table_escapes_hostile_text() {
        let mut lines = sampled();
        lines[0].entry.alias = Some("web\u{1b}]0;owned\u{7}".into());
        lines[0].entry.owner = Some("a\nb".into());
        let shown = table(&View::default().apply(&lines));
        assert_eq!(shown.lines().count(), 3, "{shown}");
        assert!(
            shown.contains("web\\u{1b}]0;owned\\u{7}  192.0.2.1"),
            "{shown}"
        );
        assert!(shown.contains(" a\\nb "), "{shown}");
    }

    #[test]
    fn json_document() {
        let lines = sampled();
        let doc: serde_json::Value = serde_json::from_str(&json(
            &View::default().apply(&lines),
            Duration::from_secs(2),
        ))
        .unwrap();
        assert_eq!(doc["interval_seconds"], 2.0);
        assert_eq!(doc["aliases"][0]["alias"], "web");
        assert_eq!(doc["aliases"][0]["rx"]["bits_per_second"], 1_644_800.0);
        assert_eq!(doc["aliases"][0]["rx"]["packets_per_second"], 200.0);
        assert_eq!(doc["aliases"][0]["rx"]["bytes"], 822_400);
        assert_eq!(doc["aliases"][1]["alias"], serde_json::Value::Null);
        assert_eq!(doc["aliases"][1]["state"], "undocumented");
        assert_eq!(doc["aliases"][1]["tx"]["packets_per_second"], 0.5);
    }
}
