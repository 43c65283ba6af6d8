//! `s` in the drill-down (issue 15): a daemon counting services, a unit
//! echoing a known number of datagrams on an alias, datagrams to a closed
//! port on it, and top showing that unit's and the unserved counts exactly.

use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use lab::{cgroups::Peer, daemon::binary, harness::Outcome, traffic::udp_socket};

use crate::{
    fixture::{Lab, PEER},
    tmux::{self, Tmux},
};

const ALIAS: &str = "10.83.0.10";
/// Echoed datagrams and their payload; the closed port's datagrams and
/// theirs: all different, so a count in the wrong place cannot pass.
const ECHOED: (u64, u64) = (5, 100);
const CLOSED: (u64, u64) = (3, 60);

/// IP bytes of `n` IPv4 UDP datagrams of `payload` bytes.
fn ip_bytes((n, payload): (u64, u64)) -> u64 {
    n * (20 + 8 + payload)
}

pub fn run() -> Result<Outcome> {
    if let Some(reason) = tmux::missing() {
        return Ok(Outcome::Skipped(reason));
    }
    let mut lab = Lab::new("10.83.0", &[10])?;
    let web = lab.unit("web.service")?;
    let daemon = lab.daemon()?;
    let ns = &lab.veth.server.ns;
    let (_web, _) = Peer::start(PEER, ns, &web, &["udp-echo", &format!("{ALIAS}:7")])?;
    let client = udp_socket(&lab.veth.client.ns, "10.83.0.1:0".parse()?)?;
    let echo: SocketAddr = format!("{ALIAS}:7").parse()?;
    for _ in 0..ECHOED.0 {
        client.send_to(&[1; ECHOED.1 as usize], echo)?;
        client.recv_from(&mut [0; 2048])?;
    }
    let closed: SocketAddr = format!("{ALIAS}:9999").parse()?;
    for _ in 0..CLOSED.0 {
        client.send_to(&[2; CLOSED.1 as usize], closed)?;
    }

    let bin = binary()?;
    let pane = Tmux::start(&[
        "ip",
        "netns",
        "exec",
        ns.name(),
        bin.to_str().context("non-UTF-8 binary path")?,
        "top",
        "--url",
        "http://127.0.0.1:9864",
    ])?;
    // The alias has no name in the (absent) alias file: its row is the
    // address, which the filter picks out.
    pane.wait_for("the alias's row", |s| s.text.contains(ALIAS))?;
    pane.keys(&["/"])?;
    pane.literal(ALIAS)?;
    pane.keys(&["Enter", "Enter"])?;
    pane.wait_for("the peers of the alias", |s| {
        s.text.contains(&format!("peers of {ALIAS} ({ALIAS})"))
    })?;
    pane.keys(&["s"])?;
    let iface = &lab.veth.server.ifname;
    let echoed = ip_bytes(ECHOED);
    let want_web = format!(
        "web.service {iface} {} {echoed} {} {echoed} svcpeer",
        ECHOED.0, ECHOED.0
    );
    let want_unserved = format!("(unserved) {iface} {} {} - -", CLOSED.0, ip_bytes(CLOSED));
    let screen = pane.wait_for("the services of the alias", |s| {
        s.text.contains(&format!("services of {ALIAS} ({ALIAS})"))
            && s.text
                .lines()
                .any(|l| l.trim_start().starts_with("(unserved)"))
    })?;
    println!("{}", screen.text.trim_end());
    let lines: Vec<String> = screen
        .text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for want in [&want_web, &want_unserved] {
        ensure!(
            lines.iter().any(|l| l == want),
            "no line `{want}` in the services pane"
        );
    }
    pane.keys(&["s"])?;
    pane.wait_for("the peers again", |s| {
        s.text.contains(&format!("peers of {ALIAS} ({ALIAS})"))
    })?;
    drop(pane);
    daemon.stop()?;
    Ok(Outcome::Passed)
}
