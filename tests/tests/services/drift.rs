//! Documented services against the traffic: the alias file says the web
//! alias is mail.service's, but web.service answers on it, and
//! batch.service, documented on its own alias, sends from the primary.
//! `check` exits 1 naming the units and the daemon exports both drifts;
//! with the file fixed, `check` exits 0 and the series are gone.

use std::{net::SocketAddr, path::Path, thread, time::Duration};

use anyhow::{Result, ensure};
use lab::{
    aliases, cgroups::Peer, http, netns::Netns, scratch::Scratch, traffic::udp_socket,
    units::UnitLab,
};

use super::fixture::PEER;
use crate::{Outcome, check_eq};

const WRONG: &str = "[[alias]]\nname = \"primary\"\naddress = \"10.85.0.2\"\n\
    [[alias]]\nname = \"web\"\naddress = \"10.85.0.10\"\nservice = \"mail.service\"\n\
    [[alias]]\nname = \"batch\"\naddress = \"10.85.0.12\"\nservice = \"batch.service\"\n";

/// Web as it is; batch's unbound sends leave from the primary, which is
/// therefore documented as batch.service's too.
const FIXED: &str = "[[alias]]\nname = \"primary\"\naddress = \"10.85.0.2\"\nservice = \"batch.service\"\n\
    [[alias]]\nname = \"web\"\naddress = \"10.85.0.10\"\nservice = \"web.service\"\n\
    [[alias]]\nname = \"batch\"\naddress = \"10.85.0.12\"\nservice = \"batch.service\"\n";

const PATIENCE: Duration = Duration::from_secs(10);

pub fn run() -> Result<Outcome> {
    let mut lab = UnitLab::new("10.85.0", &[10, 12])?;
    let (web, batch) = (lab.unit("web.service")?, lab.unit("batch.service")?);
    let dir = Scratch::new("svcdrift")?;
    let file = dir.write("aliases.toml", WRONG)?;
    let daemon = lab.daemon_with(&file)?;
    let ns = &lab.veth.server.ns;
    let (_web, _) = Peer::start(PEER, ns, &web, &["udp-echo", "10.85.0.10:7"])?;

    let client = udp_socket(&lab.veth.client.ns, "10.85.0.1:0".parse()?)?;
    let to: SocketAddr = "10.85.0.10:7".parse()?;
    for _ in 0..3 {
        client.send_to(&[1; 64], to)?;
        client.recv_from(&mut [0; 2048])?;
    }
    let echo = udp_socket(&lab.veth.client.ns, "10.85.0.1:9".parse()?)?;
    let echoed = thread::spawn(move || -> Result<()> {
        let mut buf = [0; 2048];
        let (n, from) = echo.recv_from(&mut buf)?;
        echo.send_to(&buf[..n], from)?;
        Ok(())
    });
    let args = ["udp-send", "-", "10.85.0.1:9", "1", "64"];
    let (_, from) = Peer::start(PEER, ns, &batch, &args)?;
    echoed.join().expect("the echo does not panic")?;
    ensure!(
        from.starts_with("10.85.0.2:"),
        "batch.service sent from {from}, not the primary"
    );

    let checked = aliases::check(Some(ns), &file)?;
    check_eq("check's exit status, wrong file", &1, &checked.code)?;
    check_eq(
        "check's report, wrong file",
        &"service: batch.service sends from 10.85.0.2, which is not its alias \"batch\" (10.85.0.12)\n\
         service: alias \"web\" (10.85.0.10) is documented for mail.service but web.service receives on it\n"
            .to_owned(),
        &checked.stdout,
    )?;
    check_eq(
        "the drift series, wrong file",
        &vec![
            r#"aliasstat_service_drift{address="10.85.0.2",alias="batch",documented="batch.service",observed="batch.service"} 1"#.to_owned(),
            r#"aliasstat_service_drift{address="10.85.0.10",alias="web",documented="mail.service",observed="web.service"} 1"#.to_owned(),
        ],
        &drift_series(ns)?,
    )?;

    dir.write("aliases.toml", FIXED)?;
    let checked = aliases::check(Some(ns), &file)?;
    check_eq("check's exit status, fixed file", &0, &checked.code)?;
    check_eq(
        "check's report, fixed file",
        &"the alias file and this host agree\n".to_owned(),
        &checked.stdout,
    )?;
    reload(&daemon, &file)?;
    check_eq(
        "the drift series, fixed file",
        &Vec::<String>::new(),
        &drift_series(ns)?,
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}

fn reload(daemon: &lab::Daemon, file: &Path) -> Result<()> {
    let since = daemon.log().len();
    daemon.hangup()?;
    let line = format!(
        "SIGHUP: reloaded 3 documented aliases from {}",
        file.display()
    );
    daemon.wait_for_line(since, &line, PATIENCE)?;
    Ok(())
}

/// The `aliasstat_service_drift` samples of the daemon in `ns`.
fn drift_series(ns: &Netns) -> Result<Vec<String>> {
    let resp = http::get(ns, "127.0.0.1:9864".parse()?, "/metrics")?;
    ensure!(resp.status == 200, "/metrics answered {}", resp.status);
    Ok(resp
        .text()?
        .lines()
        .filter(|l| l.starts_with("aliasstat_service_drift{"))
        .map(str::to_owned)
        .collect())
}
