//! Each alias lists exactly its own peers with exact counts, through the
//! API, the CLI and the metrics, and a restart keeps them all.

use anyhow::{Result, ensure};
use lab::harness::{Outcome, check_eq};

use crate::fixture::{Lab, Pairs, listed, object, sample};

/// Three clients to the first alias, two to the second; counts and sizes
/// differ per pair and per direction, so a count credited to the wrong
/// pair or direction cannot add up.
fn send(lab: &Lab, pairs: &mut Pairs) -> Result<()> {
    lab.exchange(pairs, 0, 0, &[10, 200, 1000], 50)?;
    lab.exchange(pairs, 1, 0, &[1, 2], 300)?;
    lab.exchange(pairs, 2, 0, &[64], 1200)?;
    lab.exchange(pairs, 0, 1, &[400, 400, 400, 400], 7)?;
    lab.exchange(pairs, 1, 1, &[33], 0)?;
    Ok(())
}

pub fn exact() -> Result<Outcome> {
    let lab = Lab::new(81)?;
    let daemon = lab.start(&[])?;
    let mut sent = Pairs::new();
    send(&lab, &mut sent)?;
    let list = lab.api()?;
    let metrics = lab.metrics()?;
    let one = lab.cli(&["shop-tls", "--json"])?;
    daemon.stop()?;

    for ((alias, peer), (rx, tx)) in &sent {
        println!("  {alias} <- {peer}: rx {rx}, tx {tx}");
    }
    check_eq("pairs listed", &sent, &listed(&list, &lab.aliases)?)?;
    for (alias, name, peers) in [
        (lab.aliases[0], "shop-tls", 3),
        (lab.aliases[1], "old-api", 2),
    ] {
        let o = object(&list, alias)?;
        check_eq("alias", &Some(name), &o["alias"].as_str())?;
        check_eq("state", &Some("documented"), &o["state"].as_str())?;
        check_eq("complete", &Some(true), &o["complete"].as_bool())?;
        ensure!(o["last_traffic"].is_string(), "no last_traffic in {o}");
        let labels = format!(r#"address="{alias}",alias="{name}",interface="lab-srv""#);
        check_eq(
            &format!("aliasstat_address_peers of {alias}"),
            &Some(peers),
            &sample(&metrics, "aliasstat_address_peers", &labels),
        )?;
        ensure!(
            sample(
                &metrics,
                "aliasstat_address_last_traffic_timestamp_seconds",
                &labels
            )
            .is_some(),
            "no last-traffic series for {alias}"
        );
    }
    let one: Vec<serde_json::Value> = serde_json::from_str(&one)?;
    check_eq("`peers shop-tls` objects", &1, &one.len())?;
    check_eq("`peers shop-tls`", object(&list, lab.aliases[0])?, &one[0])?;
    Ok(Outcome::Passed)
}

pub fn restart() -> Result<Outcome> {
    let lab = Lab::new(82)?;
    let daemon = lab.start(&[])?;
    let mut sent = Pairs::new();
    send(&lab, &mut sent)?;
    let before = lab.api()?;
    daemon.stop()?;

    let daemon = lab.start(&[])?;
    let after = lab.api()?;
    // Counting goes on across the restart: one more round adds exactly.
    send(&lab, &mut sent)?;
    let again = lab.api()?;
    daemon.stop()?;

    for alias in lab.aliases {
        check_eq(
            &format!("peers of {alias} across the restart"),
            object(&before, alias)?,
            object(&after, alias)?,
        )?;
    }
    check_eq(
        "pairs after another round",
        &sent,
        &listed(&again, &lab.aliases)?,
    )?;
    Ok(Outcome::Passed)
}
