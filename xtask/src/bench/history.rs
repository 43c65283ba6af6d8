//! The history store (issue 16): one interval's write for 10k addresses,
//! the bytes it keeps per active address per day at 5-minute resolution,
//! and a monthly report over 1k aliases, all through `probe history` on a
//! scratch database with a deterministic traffic mix (every address
//! active in every interval, 3 kbit/s to 3 Mbit/s).

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use lab::scratch::Scratch;
use serde_json::Value;

use super::{Plan, Verdict, tools::Tools};

/// A scrape of 10k configured aliases took about 50 ms on this VM
/// (BENCHMARKS.md, section 4); the write may cost a tenth of that.
const SCRAPE_10K_MS: f64 = 50.0;

pub struct History {
    /// (addresses, days, probe's answer)
    runs: Vec<(usize, u64, Value)>,
}

pub fn run(tools: &Tools, plan: &Plan) -> Result<History> {
    let sizes: [(usize, u64); 2] = if plan.trials == 1 {
        [(100, 1), (100, 2)]
    } else {
        [(10_000, 1), (1_000, 30)]
    };
    let mut runs = Vec::new();
    for (addresses, days) in sizes {
        let dir = Scratch::new("history-bench")?;
        let report = tools.probe(&[
            "history",
            "--dir",
            dir.path().to_str().context("a UTF-8 temp path")?,
            "--addresses",
            &addresses.to_string(),
            "--days",
            &days.to_string(),
            "--trials",
            &plan.trials.to_string(),
        ])?;
        runs.push((addresses, days, report));
    }
    Ok(History { runs })
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

impl History {
    pub fn table(&self) -> String {
        let mut t = String::from(
            "| addresses | days | write one interval | database | per address per day | report over the period | its CPU time |\n|---|---|---|---|---|---|---|\n",
        );
        for (addresses, days, r) in &self.runs {
            let _ = writeln!(
                t,
                "| {addresses} | {days} | {:.2} ms | {:.1} MiB | {:.0} B | {:.3} s | {:.3} s |",
                number(r, "write_seconds_median") * 1e3,
                number(r, "db_bytes") / 1_048_576.0,
                number(r, "bytes_per_address_day"),
                number(r, "report_seconds_median"),
                number(r, "report_cpu_seconds_median"),
            );
        }
        t
    }

    pub fn verdicts(&self) -> Vec<Verdict> {
        let (Some(write), Some(month)) = (self.runs.first(), self.runs.last()) else {
            return Vec::new();
        };
        vec![
            Verdict::at_most(
                &format!("history: write one interval, {} addresses", write.0),
                number(&write.2, "write_seconds_median") * 1e3,
                SCRAPE_10K_MS / 10.0,
                "ms",
            ),
            Verdict::at_most(
                "history: storage per active address per day",
                number(&write.2, "bytes_per_address_day"),
                2048.0,
                "B",
            ),
            Verdict::at_most(
                &format!("history: report over {} aliases, {} days", month.0, month.1),
                number(&month.2, "report_seconds_median"),
                1.0,
                "s",
            ),
        ]
    }
}
