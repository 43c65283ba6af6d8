//! A corrupt and a locked database, an unwritable state directory and a
//! month that does not exist: each a clear error from `report`, and the
//! daemon counting and serving metrics all the same, saying what failed
//! in `aliasstat_history_write_errors_total` and in its log.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use lab::{Count, Daemon, Dir, dump, http, ip};

use super::fixture::{self, Lab, WHOLE};
use crate::{Outcome, check_eq};

const METRICS: &str = "127.0.0.1:9864";

pub fn run() -> Result<Outcome> {
    let lab = Lab::new()?;
    let (ok, _, stderr) = fixture::report(&["--month", "2026-13"])?;
    ensure!(
        !ok && stderr.contains("`2026-13` is not a month"),
        "month 13: {stderr}"
    );
    println!("  --month 2026-13: {}", stderr.trim());

    std::fs::write(lab.state.path().join("history.db"), vec![0x5a; 16384])?;
    report_fails(&lab, "is not a usable history database", "corrupt")?;
    daemon_counts_anyway(&lab, &[], "is not a usable history database")?;
    std::fs::remove_file(lab.state.path().join("history.db"))?;

    // A real database, held by a process with an exclusive lock.
    lab.start(&[])?.stop()?;
    let mut holder = lock(&lab)?;
    report_fails(&lab, "is locked by another process", "locked")?;
    daemon_counts_anyway(&lab, &[], "is locked by another process")?;
    holder.kill()?;
    holder.wait()?;

    let file = lab.state.path().join("not-a-dir");
    std::fs::write(&file, "")?;
    let dir = file.join("state");
    let dir = dir.to_str().context("UTF-8 path")?;
    daemon_counts_anyway(
        &lab,
        &["--state-dir", dir],
        "cannot create the state directory",
    )?;
    Ok(Outcome::Passed)
}

fn report_fails(lab: &Lab, says: &str, what: &str) -> Result<()> {
    let state = lab.state.path().to_str().context("UTF-8 path")?;
    let (ok, _, stderr) = fixture::report(&[&WHOLE[..], &["--state-dir", state]].concat())?;
    ensure!(
        !ok && stderr.contains(says),
        "report on a {what} database: {stderr}"
    );
    println!("  report, {what}: {}", stderr.trim());
    Ok(())
}

/// The daemon starts, counts a datagram exactly and serves metrics that
/// count the failed write; its log says `says`, for the history and for
/// the peer record kept in the same database.
fn daemon_counts_anyway(lab: &Lab, more: &[&str], says: &str) -> Result<()> {
    let daemon: Daemon = lab.start(more)?;
    // The recorder's line, logged once the failed write is counted.
    for from in ["counting and serving go on", "the peer record starts empty"] {
        let line = daemon.wait_for_line(0, from, Duration::from_secs(10))?;
        ensure!(line.contains(says), "expected `{says}` in: {line}");
        println!("  daemon: {}", line.trim());
    }
    let before = dump(&lab.veth.server.ns, &lab.pins)?;
    lab.udp("shop", 1, 64, 8)?;
    let after = dump(&lab.veth.server.ns, &lab.pins)?;
    let iface = lab.veth.server.ifname.as_str();
    let shop = ip(fixture::ALIASES[0].2);
    let gained = |s: &lab::Snapshot| {
        s.addresses(iface, Dir::Rx, |a| *a == shop)
            .get(&shop)
            .copied()
            .unwrap_or_default()
    };
    let (a, b) = (gained(&after), gained(&before));
    let counted = Count::new(a.packets - b.packets, a.bytes - b.bytes);
    check_eq(
        "counted while the store fails",
        &Count::datagram(shop, 64),
        &counted,
    )?;
    let metrics = http::get(&lab.veth.server.ns, METRICS.parse()?, "/metrics")?;
    let text = metrics.text()?;
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("aliasstat_history_write_errors_total "))
        .and_then(|v| v.parse::<u64>().ok());
    ensure!(
        errors.is_some_and(|e| e >= 1),
        "no failed write counted: {errors:?}"
    );
    daemon.stop()
}

/// A process holding the database with an exclusive lock until killed.
fn lock(lab: &Lab) -> Result<std::process::Child> {
    let path = lab.state.path().join("history.db");
    let script = format!(
        "import sqlite3,sys\nc=sqlite3.connect({:?},isolation_level=None)\nc.execute('PRAGMA locking_mode=EXCLUSIVE')\nc.execute('BEGIN EXCLUSIVE')\nc.execute('DELETE FROM baseline')\nprint('locked',flush=True)\nsys.stdin.read()\n",
        path.to_str().context("UTF-8 path")?
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 with sqlite3 is needed to hold a lock")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("piped")?).read_line(&mut line)?;
    ensure!(line.trim() == "locked", "the lock holder said {line:?}");
    child.stdin.as_mut().context("piped")?.flush()?;
    Ok(child)
}
