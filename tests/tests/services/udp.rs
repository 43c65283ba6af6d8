//! `web.service` and `mail.service` run UDP echoes bound to one alias
//! each; `batch.service` sends from a third alias with an explicit bind,
//! and from the primary without one. Each (address, unit) pair carries
//! exactly the datagrams sent, both ways.

use std::{net::SocketAddr, thread};

use anyhow::Result;
use lab::{cgroups::Peer, ip, traffic::udp_socket, units::UnitLab};

use super::fixture::{PEER, counts, services, units};
use crate::{Outcome, check_eq};

/// Datagrams and payload bytes of each flow: all different, so that a
/// count in the wrong pair cannot pass for the right one.
const WEB: (u64, u64) = (5, 100);
const MAIL: (u64, u64) = (3, 200);
const BATCH_BOUND: (u64, u64) = (4, 300);
const BATCH_ROUTED: (u64, u64) = (2, 400);

/// IP bytes of `n` IPv4 UDP datagrams of `payload` bytes.
fn ip_bytes((n, payload): (u64, u64)) -> u64 {
    n * (20 + 8 + payload)
}

pub fn run() -> Result<Outcome> {
    let mut lab = UnitLab::new("10.81.0", &[10, 11, 12])?;
    let (web, mail, batch) = (
        lab.unit("web.service")?,
        lab.unit("mail.service")?,
        lab.unit("batch.service")?,
    );
    let daemon = lab.daemon()?;
    let ns = &lab.veth.server.ns;
    let (_web, _) = Peer::start(PEER, ns, &web, &["udp-echo", "10.81.0.10:7"])?;
    let (_mail, _) = Peer::start(PEER, ns, &mail, &["udp-echo", "10.81.0.11:7"])?;

    let client = udp_socket(&lab.veth.client.ns, "10.81.0.1:0".parse()?)?;
    for (to, (n, payload)) in [("10.81.0.10:7", WEB), ("10.81.0.11:7", MAIL)] {
        let to: SocketAddr = to.parse()?;
        for _ in 0..n {
            client.send_to(&vec![1; payload as usize], to)?;
            client.recv_from(&mut [0; 2048])?;
        }
    }
    // The client side echoes what batch.service sends.
    let echo = udp_socket(&lab.veth.client.ns, "10.81.0.1:9".parse()?)?;
    let echoed = thread::spawn(move || -> Result<()> {
        let mut buf = [0; 2048];
        for _ in 0..BATCH_BOUND.0 + BATCH_ROUTED.0 {
            let (n, from) = echo.recv_from(&mut buf)?;
            echo.send_to(&buf[..n], from)?;
        }
        Ok(())
    });
    let send = |from: &str, (n, payload): (u64, u64)| {
        let args = [
            "udp-send",
            from,
            "10.81.0.1:9",
            &n.to_string(),
            &payload.to_string(),
        ];
        Peer::start(PEER, ns, &batch, &args).map(|(_, local)| local)
    };
    let bound = send("10.81.0.12", BATCH_BOUND)?;
    let routed = send("-", BATCH_ROUTED)?;
    echoed.join().expect("the echo does not panic")?;
    println!("  batch.service sent from {bound} and (unbound) from {routed}");

    let doc = services(&lab.veth)?;
    let both = |flow| {
        let b = ip_bytes(flow);
        Some([flow.0, b, flow.0, b])
    };
    check_eq(
        "web.service on its alias",
        &both(WEB),
        &counts(&doc, ip("10.81.0.10"), "web.service"),
    )?;
    check_eq(
        "mail.service on its alias",
        &both(MAIL),
        &counts(&doc, ip("10.81.0.11"), "mail.service"),
    )?;
    check_eq(
        "batch.service, bound",
        &both(BATCH_BOUND),
        &counts(&doc, ip("10.81.0.12"), "batch.service"),
    )?;
    check_eq(
        "batch.service, routed",
        &both(BATCH_ROUTED),
        &counts(&doc, lab.primary, "batch.service"),
    )?;
    for (alias, unit) in [
        ("10.81.0.10", "web.service"),
        ("10.81.0.11", "mail.service"),
        ("10.81.0.12", "batch.service"),
    ] {
        check_eq(
            &format!("units on {alias}"),
            &vec![unit.to_owned()],
            &units(&doc, ip(alias)),
        )?;
    }
    check_eq(
        "the primary's units",
        &vec!["batch.service".to_owned()],
        &units(&doc, lab.primary),
    )?;
    let web_row = doc
        .addresses
        .iter()
        .find(|a| a.address == ip("10.81.0.10"))
        .expect("listed");
    check_eq(
        "web's cgroup",
        &lab.cgroups.path_of("web.service"),
        &web_row.services[0].cgroup,
    )?;
    check_eq(
        "web's processes",
        &vec!["svcpeer".to_owned()],
        &web_row.services[0].processes,
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}
