//! SIGHUP: a valid file renames without touching the counts, an invalid
//! one is logged with its place and the last good inventory stays.

use std::net::SocketAddr;

use anyhow::{Result, bail, ensure};
use lab::{
    Count, Netns, Veth,
    aliases::{Aliases, State},
    harness::{Case, Outcome},
    http, ip,
    link::Ipv6,
    poll::EVENTS,
    prometheus::parse_text,
    served::{Listen, Served},
    traffic,
};

use crate::{CLIENT_PORT, PATIENCE, SERVER_PORT};

pub const CASE: Case = (
    "sighup_reloads_valid_files_and_keeps_the_last_good_one",
    run,
);

fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let (client, primary, alias) = (ip("10.78.0.1"), ip("10.78.0.2"), ip("10.78.0.5"));
    veth.client.add_addr(client, 24)?;
    veth.server.add_addr(primary, 24)?;
    veth.server.add_addr(alias, 24)?;
    veth.know_each_other(&[client], &[primary, alias])?;
    let srv = &veth.server;
    let served = Served::new(
        "hup",
        srv,
        "[[alias]]\nname = \"blue\"\naddress = \"10.78.0.5\"\nowner = \"team-blue\"\n",
        Listen::Loopback,
    )?;
    let (config, listen) = (&served.config, served.listen());
    let daemon = served.start(srv)?;
    // The daemon's own view: `aliases --json` would re-read the file.
    let api = || Aliases::parse(http::get(&srv.ns, listen, "/api/v1/aliases")?.text()?);

    let from = traffic::udp_socket(&veth.client.ns, SocketAddr::new(client, CLIENT_PORT))?;
    let to = traffic::udp_socket(&srv.ns, SocketAddr::new(alias, SERVER_PORT))?;
    let (mut rx, mut tx) = (Count::default(), Count::default());
    for request in [100, 250, 1000] {
        traffic::exchange(&from, &to, request, 64)?;
        rx += Count::datagram(alias, request);
        tx += Count::datagram(alias, 64);
    }
    let counted = |a: &Aliases, name: &str, rx: Count, tx: Count| -> Result<()> {
        let row = a.row(alias)?;
        ensure!(
            row.alias.as_deref() == Some(name)
                && row.state == State::Documented
                && row.rx() == rx
                && row.tx() == tx,
            "expected alias {name:?} with rx {rx}, tx {tx}; got {row:#?}"
        );
        Ok(())
    };
    counted(&api()?, "blue", rx, tx)?;
    ensure!(gauge(&srv.ns, listen, "aliasstat_config_last_reload_success")? == 1.0);

    // A valid new file: the name changes, the counts do not.
    served.rewrite(
        "[[alias]]\nname = \"green\"\naddress = \"10.78.0.5\"\nowner = \"team-green\"\n",
    )?;
    let since = daemon.log().len();
    daemon.hangup()?;
    daemon.wait_for_line(
        since,
        &format!(
            "SIGHUP: reloaded 1 documented aliases from {}",
            config.display()
        ),
        PATIENCE,
    )?;
    // The log line comes just before the new inventory is published.
    let reloaded = EVENTS.until("the new name served", PATIENCE, api, |a| {
        a.row(alias)
            .is_ok_and(|r| r.alias.as_deref() == Some("green"))
    })?;
    counted(&reloaded, "green", rx, tx)?;
    ensure!(reloaded.row(alias)?.owner.as_deref() == Some("team-green"));
    println!("  after a valid SIGHUP: \"green\", rx {rx}, tx {tx}");

    // An invalid file: logged with its place, the previous inventory stays.
    served.rewrite(
        "[[alias]]\nname = \"red\"\naddress = \"10.78.0.5\"\n[[alias]]\nname = \"red-too\"\naddress = \"10.78.0.05\"\n",
    )?;
    let since = daemon.log().len();
    daemon.hangup()?;
    let line = daemon.wait_for_line(
        since,
        &format!(
            "SIGHUP: keeping the previous alias inventory: {}:6:11: \"10.78.0.05\" is not an IP address",
            config.display()
        ),
        PATIENCE,
    )?;
    println!("  {}", line.trim());
    EVENTS.until(
        "aliasstat_config_last_reload_success after a failed reload",
        PATIENCE,
        || gauge(&srv.ns, listen, "aliasstat_config_last_reload_success"),
        |&v| v == 0.0,
    )?;
    counted(&api()?, "green", rx, tx)?;

    // Counting went on throughout.
    traffic::exchange(&from, &to, 7, 8)?;
    rx += Count::datagram(alias, 7);
    tx += Count::datagram(alias, 8);
    counted(&api()?, "green", rx, tx)?;
    println!("  after a failed SIGHUP and one more exchange: \"green\", rx {rx}, tx {tx}");
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// The value of the one sample of `name` without labels in `/metrics`.
fn gauge(ns: &Netns, listen: SocketAddr, name: &str) -> Result<f64> {
    let text = http::get(ns, listen, "/metrics")?.text()?.to_owned();
    let samples = parse_text(&text)?;
    let found: Vec<f64> = samples
        .iter()
        .filter(|m| m.name == name && m.labels.is_empty())
        .map(|m| m.value)
        .collect();
    match found[..] {
        [value] => Ok(value),
        _ => bail!("expected one {name} in /metrics, found {found:?}:\n{text}"),
    }
}
