//! Per-packet cost under BPF_PROG_TEST_RUN, from `probe testrun`.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::{Plan, Verdict, stats::median, tools::Tools};

/// One row: a hook, family and key count, with medians in nanoseconds.
pub struct Row {
    pub hook: String,
    pub family: u64,
    /// `None`: one hot key through the real program.
    pub keys: Option<u64>,
    pub empty: f64,
    /// Median over trials of (program − its baseline in the same trial).
    pub over: f64,
    /// Hot key only: median over trials of (the program with the peer table
    /// off (`run --peers off`) − empty); counting alone.
    pub peers_off: Option<f64>,
}

/// How probe names the real program loaded with `--peers off`.
const PEERS_OFF: &str = " --peers off";

pub struct PacketCost {
    pub rows: Vec<Row>,
    pub repeat: u64,
    pub trials: u64,
    pub map_entries: u64,
    /// Entries of each peer map after the runs, by map name.
    pub peer_entries: Vec<(String, u64)>,
    /// Instructions of each real program after verification (xlated).
    pub insns: Vec<(String, u64)>,
    /// The cgroup_skb service program per delivered packet, per family.
    pub services: Vec<ServiceRow>,
}

/// `probe testrun-services`: one hot (cgroup, address) key of a family.
pub struct ServiceRow {
    pub family: u64,
    pub empty: f64,
    /// Median over trials of (service program − empty cgroup_skb).
    pub over: f64,
}

pub fn run(tools: &Tools, plan: &Plan) -> Result<PacketCost> {
    let out = tools.probe(&[
        "testrun",
        "--repeat",
        &plan.repeat.to_string(),
        "--trials",
        &plan.trials.to_string(),
    ])?;
    let services = tools.probe(&[
        "testrun-services",
        "--repeat",
        &plan.repeat.to_string(),
        "--trials",
        &plan.trials.to_string(),
    ])?;
    let mut cost = parse(&out)?;
    cost.services = parse_services(&services)?;
    Ok(cost)
}

fn parse_services(out: &Value) -> Result<Vec<ServiceRow>> {
    let mut rows = Vec::new();
    for row in out["rows"].as_array().context("probe: no service rows")? {
        let times = |name: &str| -> Result<Vec<f64>> {
            Ok(row["ns"][name]
                .as_array()
                .with_context(|| format!("probe: no times of {name}"))?
                .iter()
                .filter_map(Value::as_f64)
                .collect())
        };
        let empty = times("empty")?;
        let real = times("service")?;
        let paired: Vec<f64> = real.iter().zip(&empty).map(|(p, b)| p - b).collect();
        rows.push(ServiceRow {
            family: row["family"].as_u64().unwrap_or(0),
            empty: median(&empty).context("probe: no trials")?,
            over: median(&paired).context("probe: no trials")?,
        });
    }
    Ok(rows)
}

fn parse(out: &Value) -> Result<PacketCost> {
    let mut rows = Vec::new();
    for row in out["rows"].as_array().context("probe: no rows")? {
        let ns = row["ns"]
            .as_object()
            .context("probe: a row without times")?;
        let times = |pred: &dyn Fn(&str) -> bool| -> Result<Vec<f64>> {
            let (_, v) = ns
                .iter()
                .find(|(k, _)| pred(k))
                .context("probe: a program is missing from a row")?;
            Ok(v.as_array()
                .context("probe: times are not a list")?
                .iter()
                .filter_map(Value::as_f64)
                .collect())
        };
        let empty = times(&|k| k.contains("empty"))?;
        let keys = row["keys"].as_u64();
        // Hot key: the real program against the empty one. Keyed: the
        // counting-and-rekeying program against the rekeying one, so that
        // only the counting is left.
        let (program, baseline) = match keys {
            None => (
                times(&|k| k.starts_with("aliasstat") && !k.ends_with(PEERS_OFF))?,
                empty.clone(),
            ),
            Some(_) => (
                times(&|k| k.contains("keyed"))?,
                times(&|k| k.contains("rekey"))?,
            ),
        };
        let paired: Vec<f64> = program.iter().zip(&baseline).map(|(p, b)| p - b).collect();
        let peers_off = match keys {
            None => {
                let off = times(&|k| k.ends_with(PEERS_OFF))?;
                let paired: Vec<f64> = off.iter().zip(&empty).map(|(p, b)| p - b).collect();
                median(&paired)
            }
            Some(_) => None,
        };
        rows.push(Row {
            hook: row["hook"].as_str().unwrap_or("?").to_owned(),
            family: row["family"].as_u64().unwrap_or(0),
            keys,
            empty: median(&empty).context("probe: no trials")?,
            over: median(&paired).context("probe: no trials")?,
            peers_off,
        });
    }
    Ok(PacketCost {
        rows,
        repeat: out["repeat"].as_u64().unwrap_or(0),
        trials: out["trials"].as_u64().unwrap_or(0),
        map_entries: out["map_entries"].as_u64().unwrap_or(0),
        peer_entries: numbers(&out["peer_entries"]),
        insns: numbers(&out["insns"]),
        services: Vec::new(),
    })
}

/// The numeric members of a JSON object, by name.
fn numbers(object: &Value) -> Vec<(String, u64)> {
    object.as_object().map_or_else(Vec::new, |o| {
        o.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .collect()
    })
}

/// `name n, name n` for a table's footnote.
fn listed(items: &[(String, u64)]) -> String {
    let each: Vec<String> = items.iter().map(|(k, n)| format!("{k} {n}")).collect();
    each.join(", ")
}

impl PacketCost {
    pub fn table(&self) -> String {
        let mut t = String::from(
            "| hook | family | distinct keys | empty program | aliasstat | over empty | × empty |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            let keys = match r.keys {
                None => "1 (real program)".to_owned(),
                Some(1) => "1 (keyed method)".to_owned(),
                Some(k) => super::stats::count(k as f64),
            };
            let total = r.empty + r.over;
            let _ = writeln!(
                t,
                "| {} | IPv{} | {keys} | {:.0} ns | {total:.0} ns | **{:.0} ns** | {:.2} |",
                r.hook,
                r.family,
                r.empty,
                r.over,
                total / r.empty
            );
        }
        for r in self.rows.iter().filter(|r| r.keys.is_none()) {
            if let Some(off) = r.peers_off {
                let _ = writeln!(
                    t,
                    "\n{} IPv{} hot key: counting alone (`--peers off`) {off:.0} ns over empty; peer tracking adds **{:.0} ns**.",
                    r.hook,
                    r.family,
                    r.over - off
                );
            }
        }
        for r in &self.services {
            let _ = writeln!(
                t,
                "\ncgroup_skb ingress (per service), IPv{}, one hot (cgroup, address) key: empty program {:.0} ns, per delivered packet **{:.0} ns** over it.",
                r.family, r.empty, r.over
            );
        }
        let _ = writeln!(
            t,
            "\n{} runs per measurement, median of {} trials; the address map held {} entries.",
            super::stats::count(self.repeat as f64),
            self.trials,
            super::stats::count(self.map_entries as f64)
        );
        if !self.peer_entries.is_empty() {
            let _ = writeln!(
                t,
                "\nPeer maps after the runs: {}.",
                listed(&self.peer_entries)
            );
        }
        if !self.insns.is_empty() {
            let _ = writeln!(
                t,
                "\nInstructions after verification (xlated): {}.",
                listed(&self.insns)
            );
        }
        t
    }

    /// The worst "over empty" among rows matching `keys`, for the targets.
    pub fn worst(&self, keys: Option<u64>) -> Option<f64> {
        self.rows
            .iter()
            .filter(|r| r.keys == keys)
            .map(|r| r.over)
            .reduce(f64::max)
    }

    /// The worst ratio of a 64k-key row to the hot-key row of the same
    /// hook and family.
    pub fn worst_spread(&self) -> Option<f64> {
        self.rows
            .iter()
            .filter(|r| r.keys == Some(65536))
            .filter_map(|many| {
                let hot = self
                    .rows
                    .iter()
                    .find(|r| r.keys.is_none() && r.hook == many.hook && r.family == many.family)?;
                Some(many.over / hot.over.max(1.0))
            })
            .reduce(f64::max)
    }

    /// The worst cost of peer tracking for a hot pair: the real program
    /// over the same program loaded with `--peers off`.
    pub fn worst_peer_tracking(&self) -> Option<f64> {
        self.rows
            .iter()
            .filter_map(|r| Some(r.over - r.peers_off?))
            .reduce(f64::max)
    }

    /// The targets (issue 13): a hot key within 25 ns of the empty
    /// program, and 64k keys within twice the hot key's cost.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut v = Vec::new();
        if let Some(peers) = self.worst_peer_tracking() {
            v.push(Verdict::at_most(
                "peer tracking over counting alone, one hot pair (worst of TC/XDP, v4/v6)",
                peers,
                20.0,
                "ns",
            ));
        }
        if let Some(svc) = self.services.iter().map(|r| r.over).reduce(f64::max) {
            v.push(Verdict::at_most(
                "per delivered packet, service program over an empty cgroup_skb (worst of v4/v6)",
                svc,
                25.0,
                "ns",
            ));
        }
        if let Some(hot) = self.worst(None) {
            v.push(Verdict::at_most(
                "per packet over empty, one hot key (worst of TC/XDP, v4/v6)",
                hot,
                25.0,
                "ns",
            ));
        }
        if let Some(spread) = self.worst_spread() {
            v.push(Verdict::at_most(
                "per packet over empty, 64k keys ÷ one hot key (worst of TC/XDP, v4/v6)",
                spread,
                2.0,
                "×",
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keyed_rows_subtract_the_rekeying_baseline_per_trial() {
        let out = json!({
            "repeat": 1000, "trials": 3, "map_entries": 10,
            "rows": [
                {"hook": "tc", "family": 4, "keys": null,
                 "ns": {"bench_empty_tc": [30, 31, 30], "aliasstat_tc_ingress": [70, 72, 69],
                        "aliasstat_tc_ingress --peers off": [55, 56, 55]}},
                {"hook": "xdp", "family": 6, "keys": 1024,
                 "ns": {"bench_empty_xdp": [20, 20, 20], "bench_rekey_xdp": [25, 30, 25],
                        "bench_keyed_xdp": [75, 80, 90]}},
            ]
        });
        let cost = parse(&out).unwrap();
        assert_eq!(cost.rows[0].empty, 30.0);
        // Per-trial differences 40, 41, 39.
        assert_eq!(cost.rows[0].over, 40.0);
        // Per-trial differences 25, 25, 25: tracking costs 15.
        assert_eq!(cost.rows[0].peers_off, Some(25.0));
        assert_eq!(cost.worst_peer_tracking(), Some(15.0));
        // Per-trial differences 50, 50, 65.
        assert_eq!(cost.rows[1].over, 50.0);
        assert_eq!(cost.worst(Some(1024)), Some(50.0));
        assert_eq!(cost.worst_spread(), None);
        assert!(
            cost.table()
                .contains("| xdp | IPv6 | 1\u{2009}024 | 20 ns | 70 ns | **50 ns** | 3.50 |")
        );
    }

    #[test]
    fn service_rows_subtract_the_empty_cgroup_program_per_trial() {
        let out = json!({"repeat": 1000, "trials": 3, "rows": [
            {"family": 4, "ns": {"empty": [10, 12, 10], "service": [30, 31, 40]}},
        ]});
        let rows = parse_services(&out).unwrap();
        assert_eq!(rows[0].empty, 10.0);
        // Per-trial differences 20, 19, 30.
        assert_eq!(rows[0].over, 20.0);
    }
}
