//! Known UDP and TCP transfers over several intervals, with a restart, a
//! SIGKILL between samples and a simulated reboot (`aliasstat detach`: the
//! maps are gone and the counters start again from zero) in between. The
//! report's totals per alias and per owner equal what was sent.

use std::{thread, time::Duration};

use anyhow::Result;

use super::fixture::{self, Lab, WHOLE};
use crate::{Outcome, check_eq};

/// Longer than one interval, so that samples fall in between.
const PAST_A_SAMPLE: Duration = Duration::from_millis(2500);

pub fn run() -> Result<Outcome> {
    let lab = Lab::new()?;
    let first = lab.start(&[])?;
    lab.udp("shop", 5, 1000, 200)?;
    let mut acks = lab.tcp("db", 1 << 20)?;
    thread::sleep(PAST_A_SAMPLE);
    lab.udp("mail", 3, 500, 50)?;
    first.stop()?;

    // No daemon: the kernel counts, and the next start's first sample
    // takes it in.
    lab.udp("mail", 4, 300, 30)?;
    let second = lab.start(&[])?;
    lab.udp("shop", 2, 700, 70)?;
    second.stop()?;

    println!("  detach: {}", lab.detach()?.trim().replace('\n', "; "));
    let third = lab.start(&[])?;
    third.wait_for_line(
        0,
        "the counters are new since the last sample",
        Duration::from_secs(10),
    )?;
    lab.udp("shop", 3, 100, 10)?;
    lab.udp("mail", 2, 100, 10)?;
    thread::sleep(PAST_A_SAMPLE);
    acks += lab.tcp("db", 256 << 10)?;
    lab.udp("shop", 1, 900, 90)?;
    // SIGKILL between two samples: no last sample, the maps stay.
    third.kill()?;
    lab.udp("mail", 5, 200, 20)?;
    let fourth = lab.start(&[])?;
    fourth.wait_for_line(0, "continues from its last sample", Duration::from_secs(10))?;
    lab.udp("shop", 1, 400, 40)?;
    fourth.stop()?;

    check_totals(&lab, acks)
}

fn check_totals(lab: &Lab, acks: u64) -> Result<Outcome> {
    let state = lab.state.path().to_str().expect("a UTF-8 temp path");
    let args = |by: &'static str| [&WHOLE[..], &["--by", by, "--state-dir", state]].concat();
    let (ok, by_alias, stderr) = fixture::report(&args("alias"))?;
    anyhow::ensure!(ok, "report --by alias failed: {stderr}");
    let mut got = fixture::rows(&by_alias, "alias");
    println!("  report: {by_alias}");
    // db's out bytes are the receiver's ACKs, whose size nothing here
    // fixes; their packets are its own segment count.
    let db_out = got.get_mut("db").map(|r| std::mem::take(&mut r.tx));
    check_eq(
        "db out packets (the server's OutSegs)",
        &Some(acks),
        &db_out.map(|c| c.packets),
    )?;
    let mut want: std::collections::BTreeMap<String, _> = lab
        .sent
        .borrow()
        .iter()
        .map(|(a, c)| ((*a).to_owned(), *c))
        .collect();
    check_eq("totals per alias", &want, &got)?;

    let (ok, by_owner, stderr) = fixture::report(&args("owner"))?;
    anyhow::ensure!(ok, "report --by owner failed: {stderr}");
    let mut got = fixture::rows(&by_owner, "owner");
    let data_out = got.get_mut("data").map(|r| std::mem::take(&mut r.tx));
    check_eq(
        "data out packets",
        &Some(acks),
        &data_out.map(|c| c.packets),
    )?;
    want = fixture::by_owner(&lab.sent.borrow());
    check_eq("totals per owner", &want, &got)?;
    Ok(Outcome::Passed)
}
