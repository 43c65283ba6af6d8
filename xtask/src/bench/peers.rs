//! The peers feature's periodic work at a full peer table (131,072 pairs,
//! the default `--peer-capacity`), through `probe peer-record` and
//! `probe peer-rates`: the retention record's save after a sweep against
//! the full rewrite it replaced, and the rate task's read every 2 s, its
//! distinct-peer count now and as it was, next to the counter read and
//! the inventory join it sits beside.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use lab::scratch::Scratch;
use serde_json::Value;

use super::{Plan, stats::median, tools::Tools};

pub struct PeerWork {
    record: Value,
    rates: Value,
}

pub fn run(tools: &Tools, plan: &Plan) -> Result<PeerWork> {
    // 1% of the record changed per sweep; 10k local addresses, as the
    // scrape scenario's.
    let (pairs, addresses, changed) = if plan.trials == 1 {
        (2_000, 100, 20)
    } else {
        (131_072, 10_000, 1_310)
    };
    let trials = plan.trials.to_string();
    let probe = |command: &str, extra: &[&str]| -> Result<Value> {
        let dir = Scratch::new("peers-bench")?;
        let dir = dir.path().to_str().context("a UTF-8 temp path")?.to_owned();
        let pairs = pairs.to_string();
        let addresses = addresses.to_string();
        let mut args = vec![
            command,
            "--dir",
            &dir,
            "--pairs",
            &pairs,
            "--addresses",
            &addresses,
            "--trials",
            &trials,
        ];
        args.extend_from_slice(extra);
        tools.probe(&args)
    };
    let changed = changed.to_string();
    Ok(PeerWork {
        record: probe("peer-record", &["--changed", &changed])?,
        rates: probe("peer-rates", &[])?,
    })
}

/// The median of the list at `key`.
fn med(v: &Value, key: &str) -> f64 {
    let list: Vec<f64> = v[key]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    median(&list).unwrap_or(f64::NAN)
}

fn ms(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1e3)
}

fn mib(bytes: f64) -> String {
    format!("{:.2} MiB", bytes / 1_048_576.0)
}

impl PeerWork {
    pub fn table(&self) -> String {
        let r = &self.record;
        let mut t = format!(
            "Record of {} pairs, a sweep changing {} of them and dropping {} past retention; bytes are those handed to write(2) (WAL and checkpoints).\n\n| save | time | bytes written |\n|---|---|---|\n",
            r["pairs"], r["changed"], r["deleted"]
        );
        let (save, rewrite) = (med(r, "save_seconds"), med(r, "rewrite_seconds"));
        let (save_b, rewrite_b) = (med(r, "save_bytes"), med(r, "rewrite_bytes"));
        let _ = writeln!(
            t,
            "| the whole table (before) | {} | {} |",
            ms(rewrite),
            mib(rewrite_b)
        );
        let _ = writeln!(
            t,
            "| what changed (now) | **{}** ({:.0}× less) | **{}** ({:.0}× less) |",
            ms(save),
            rewrite / save,
            mib(save_b),
            rewrite_b / save_b
        );
        let _ = writeln!(
            t,
            "| the first save of the whole record | {} | {} |",
            ms(r["first_save_seconds"].as_f64().unwrap_or(f64::NAN)),
            mib(r["first_save_bytes"].as_f64().unwrap_or(f64::NAN))
        );
        let p = &self.rates;
        let _ = write!(
            t,
            "\nThe rate task's read, {} pairs in the peer table over {} local addresses, {} entries in the address map.\n\n| part | wall | CPU |\n|---|---|---|\n",
            p["pairs"], p["addresses"], p["addresses"]
        );
        let parts = &p["parts"];
        for (name, what) in [
            ("snapshot", "address counters: one snapshot"),
            ("join", "the inventory join"),
            ("distinct", "distinct peers, counted (now)"),
            ("list", "distinct peers through `Peers::list` (before)"),
        ] {
            let _ = writeln!(
                t,
                "| {what} | {} | {} |",
                ms(med(&parts[name], "wall")),
                ms(med(&parts[name], "cpu"))
            );
        }
        t
    }
}
