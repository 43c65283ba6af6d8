//! An upgrade in place from the last build that kept both families' peers
//! in one table (`PEERS`): the new daemon adopts the pinned maps, its
//! programs add IPv4 pairs to `PEERS_V4` while the old IPv4 entries stay
//! in `PEERS`, frozen, and every list adds the two exactly. The idle sweep
//! then moves the entries of both tables into the record, and nothing is
//! lost or counted twice.

use std::time::Duration;

use anyhow::Result;
use lab::{
    first_release,
    harness::{Outcome, check_eq},
    poll,
};

use crate::fixture::{Lab, Pairs, listed, sample};

/// Sweeps run every second; this bounds a loaded machine, not a speed.
const WITHIN: Duration = Duration::from_secs(60);

pub fn run() -> Result<Outcome> {
    // Built first: the first build takes minutes, and should not happen
    // with namespaces and a daemon waiting.
    let old = match first_release::SHARED_PEERS.binary()? {
        Ok(path) => path,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let lab = Lab::new(86)?;
    let mut sent = Pairs::new();
    let daemon = lab.start_binary(Some(old), &[])?;
    lab.exchange(&mut sent, 0, 0, &[10, 200], 50)?;
    lab.exchange(&mut sent, 1, 1, &[7], 900)?;
    daemon.stop()?;

    let daemon = lab.start(&[])?;
    // A pair the old table holds, and one it never saw.
    lab.exchange(&mut sent, 0, 0, &[30], 5)?;
    lab.exchange(&mut sent, 2, 0, &[64], 64)?;
    let list = lab.api()?;
    let metrics = lab.metrics()?;
    daemon.stop()?;
    check_eq(
        "pairs listed across the upgrade",
        &sent,
        &listed(&list, &lab.aliases)?,
    )?;
    let entries = |text: &str, map| sample(text, "aliasstat_map_entries", map);
    check_eq(
        "entries (old table, new IPv4 table)",
        &(Some(2), Some(2)),
        &(
            entries(&metrics, r#"map="peers""#),
            entries(&metrics, r#"map="peers_v4""#),
        ),
    )?;

    let daemon = lab.start(&["--peer-idle", "2s"])?;
    poll::until(
        "both peer tables empty",
        WITHIN,
        Duration::from_millis(200),
        || {
            let text = lab.metrics()?;
            Ok(entries(&text, r#"map="peers""#).zip(entries(&text, r#"map="peers_v4""#)))
        },
        |n| *n == Some((0, 0)),
    )?;
    let moved = lab.api()?;
    daemon.stop()?;
    check_eq(
        "pairs listed from the record",
        &sent,
        &listed(&moved, &lab.aliases)?,
    )?;
    Ok(Outcome::Passed)
}
