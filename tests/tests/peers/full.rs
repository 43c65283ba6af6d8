//! `--peer-capacity 2` and three peers: the third is not recorded, the
//! list says so, the counter holds exactly its packets, and the address
//! totals still hold everything.

use anyhow::Result;
use lab::{
    Count, Dir, dump,
    harness::{Outcome, check_eq},
};

use crate::fixture::{Lab, Pairs, listed, object, sample};

pub fn run() -> Result<Outcome> {
    let lab = Lab::new(83)?;
    let daemon = lab.start(&["--peer-capacity", "2"])?;
    let mut sent = Pairs::new();
    // One client after the other: the first two take the two entries.
    lab.exchange(&mut sent, 0, 0, &[10, 20, 30], 40)?;
    lab.exchange(&mut sent, 1, 0, &[500], 60)?;
    lab.exchange(&mut sent, 2, 0, &[7, 7, 7, 7, 7], 900)?;
    let list = lab.api()?;
    let metrics = lab.metrics()?;
    let snap = dump(&lab.veth.server.ns, &lab.pins)?;
    daemon.stop()?;

    let alias = lab.aliases[0];
    let third = (alias, lab.clients[2]);
    let (rx3, tx3) = sent[&third];
    let mut recorded = sent.clone();
    recorded.remove(&third);
    check_eq("pairs listed", &recorded, &listed(&list, &[alias])?)?;
    check_eq(
        "complete",
        &Some(false),
        &object(&list, alias)?["complete"].as_bool(),
    )?;
    check_eq(
        "not-recorded packets",
        &Some(rx3.packets + tx3.packets),
        &sample(
            &metrics,
            "aliasstat_peers_not_recorded_packets_total",
            &format!(r#"address="{alias}",interface="lab-srv""#),
        ),
    )?;
    check_eq(
        "peer table entries",
        &Some(2),
        &sample(&metrics, "aliasstat_map_entries", r#"map="peers_v4""#),
    )?;
    check_eq(
        "peer table capacity",
        &Some(2),
        &sample(&metrics, "aliasstat_map_capacity", r#"map="peers_v4""#),
    )?;
    let iface = lab.veth.server.ifname.as_str();
    for (dir, want) in [
        (Dir::Rx, sent.values().map(|(rx, _)| *rx).sum::<Count>()),
        (Dir::Tx, sent.values().map(|(_, tx)| *tx).sum::<Count>()),
    ] {
        let counted = snap.addresses(iface, dir, |a| *a == alias);
        check_eq(
            &format!("{alias} {dir:?} total"),
            &Some(want),
            &counted.get(&alias).copied(),
        )?;
    }
    Ok(Outcome::Passed)
}
