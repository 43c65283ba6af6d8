//! With a short `--peer-idle` and `--peer-retention`, a pair leaves the
//! kernel's table for the daemon's record with its exact totals, stays
//! listed (also by a daemon started again: the record is saved in the
//! state directory's database), and disappears once retention has passed.

use std::time::Duration;

use anyhow::Result;
use lab::{
    harness::{Outcome, check_eq},
    poll::{self, Every},
};

use crate::fixture::{Lab, Pairs, listed, object, sample};

const IDLE: &str = "2s";
/// Long enough for the restart in between, on a loaded machine.
const RETENTION: &str = "40s";
/// Sweeps run every second; these bound a loaded machine, not a speed.
const WITHIN: Duration = Duration::from_secs(60);
const STEP: Every = Every(Duration::from_millis(200));

pub fn run() -> Result<Outcome> {
    let lab = Lab::new(84)?;
    let daemon = lab.start(&["--peer-idle", IDLE, "--peer-retention", RETENTION])?;
    let mut sent = Pairs::new();
    lab.exchange(&mut sent, 0, 0, &[100, 200, 300], 80)?;
    lab.exchange(&mut sent, 1, 1, &[5], 5)?;

    // Both families' tables: the pairs here are IPv4, in peers_v4.
    let entries = || {
        let text = lab.metrics()?;
        let table = |map| sample(&text, "aliasstat_map_entries", map);
        Ok(table(r#"map="peers_v4""#).zip(table(r#"map="peers""#)))
    };
    poll::until(
        "the kernel's peer tables empty",
        WITHIN,
        STEP.0,
        entries,
        |n| *n == Some((0, 0)),
    )?;
    let moved = lab.api()?;
    check_eq(
        "pairs listed from the record",
        &sent,
        &listed(&moved, &lab.aliases)?,
    )?;
    // The kernel's table is empty, so a new daemon lists them only if the
    // record was saved in the state directory's database.
    daemon.stop()?;
    let daemon = lab.start(&["--peer-idle", IDLE, "--peer-retention", RETENTION])?;
    check_eq(
        "pairs listed from the saved record after a restart",
        &sent,
        &listed(&lab.api()?, &lab.aliases)?,
    )?;

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
