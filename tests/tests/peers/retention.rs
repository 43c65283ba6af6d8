//! With a short `--peer-idle` and `--peer-retention`, a pair leaves the
//! kernel's table for the daemon's record with its exact totals, stays
//! listed, and disappears once retention has passed.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use lab::{
    harness::{Outcome, check_eq},
    poll::{self, Every},
};

use crate::fixture::{Lab, Pairs, listed, object, sample};

const IDLE: &str = "2s";
const RETENTION: &str = "20s";
/// Sweeps run every second; these bound a loaded machine, not a speed.
const WITHIN: Duration = Duration::from_secs(60);
const STEP: Every = Every(Duration::from_millis(200));

pub fn run() -> Result<Outcome> {
    let lab = Lab::new(84)?;
    let daemon = lab.start(&["--peer-idle", IDLE, "--peer-retention", RETENTION])?;
    let mut sent = Pairs::new();
    lab.exchange(&mut sent, 0, 0, &[100, 200, 300], 80)?;
    lab.exchange(&mut sent, 1, 1, &[5], 5)?;

    let entries = || {
        let text = lab.metrics()?;
        Ok(sample(&text, "aliasstat_map_entries", r#"map="peers""#))
    };
    poll::until(
        "the kernel's peer table empty",
        WITHIN,
        STEP.0,
        entries,
        |n| *n == Some(0),
    )?;
    let moved = lab.api()?;
    let record = std::fs::read_to_string(lab.state.path().join("state/peers.json"))
        .context("no record file under --state-dir")?;
    check_eq(
        "pairs listed from the record",
        &sent,
        &listed(&moved, &lab.aliases)?,
    )?;
    for (alias, peer) in sent.keys() {
        ensure!(
            record.contains(&format!(r#""address":"{alias}","peer":"{peer}""#)),
            "{alias} <- {peer} is not in the record: {record}"
        );
    }

    let gone = || {
        let list = lab.api()?;
        lab.aliases
            .iter()
            .map(|&a| Ok(object(&list, a)?["peers"].as_array().map_or(0, Vec::len)))
            .collect::<Result<Vec<_>>>()
    };
    poll::until("every peer past retention", WITHIN, STEP.0, gone, |n| {
        n.iter().all(|&n| n == 0)
    })?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}
