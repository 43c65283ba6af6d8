//! `s` in the drill-down (issue 15): a daemon counting services, a unit
//! echoing a known number of datagrams on an alias, datagrams to a closed
//! port on it, and top showing that unit's and the unserved counts exactly,
//! with rates that fall to 0 once the traffic stops; then a daemon with
//! `--services off`, which top names as such.

use std::net::{SocketAddr, UdpSocket};

use anyhow::{Context, Result, ensure};
use lab::{cgroups::Peer, daemon::binary, harness::Outcome, traffic::udp_socket, units::UnitLab};

use crate::tmux::{self, Tmux};

const ALIAS: &str = "10.83.0.10";
/// Echoed datagrams and their payload; the closed port's datagrams and
/// theirs: all different, so a count in the wrong place cannot pass.
const ECHOED: (u64, u64) = (5, 100);
const CLOSED: (u64, u64) = (3, 60);

/// IP bytes of `n` IPv4 UDP datagrams of `payload` bytes.
fn ip_bytes((n, payload): (u64, u64)) -> u64 {
    n * (20 + 8 + payload)
}

/// `ECHOED` echoes through the unit's server, then `CLOSED` datagrams to
/// a port nobody listens on; each echo waits for its answer.
fn send(client: &UdpSocket) -> Result<()> {
    let echo: SocketAddr = format!("{ALIAS}:7").parse()?;
    for _ in 0..ECHOED.0 {
        client.send_to(&[1; ECHOED.1 as usize], echo)?;
        client.recv_from(&mut [0; 2048])?;
    }
    let closed: SocketAddr = format!("{ALIAS}:9999").parse()?;
    for _ in 0..CLOSED.0 {
        client.send_to(&[2; CLOSED.1 as usize], closed)?;
    }
    Ok(())
}

pub fn run() -> Result<Outcome> {
    if let Some(reason) = tmux::missing() {
        return Ok(Outcome::Skipped(reason));
    }
    let mut lab = UnitLab::new("10.83.0", &[10])?;
    let web = lab.unit("web.service")?;
    let daemon = lab.daemon()?;
    let ns = &lab.veth.server.ns;
    let (_web, _) = Peer::start(
        lab::svcpeer!(),
        ns,
        &web,
        &["udp-echo", &format!("{ALIAS}:7")],
    )?;
    let client = udp_socket(&lab.veth.client.ns, "10.83.0.1:0".parse()?)?;
    send(&client)?;

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
    for batches in [1, 2] {
        // The totals of every batch sent so far, at a rate of 0 once the
        // last one is over: whole screens after it, nothing more arrives.
        let echoed = (batches * ECHOED.0, ECHOED.1);
        let closed = (batches * CLOSED.0, CLOSED.1);
        let want = [
            format!(
                "web.service {iface} 0 bit/s 0 bit/s {} {} {} {} svcpeer",
                echoed.0,
                ip_bytes(echoed),
                echoed.0,
                ip_bytes(echoed)
            ),
            format!(
                "(unserved) {iface} 0 bit/s - {} {} - -",
                closed.0,
                ip_bytes(closed)
            ),
        ];
        let screen = pane.wait_for("the services of the alias, at rest", |s| {
            let lines = s.words();
            s.text.contains(&format!("services of {ALIAS} ({ALIAS})"))
                && want.iter().all(|w| lines.contains(w))
        })?;
        println!("{}", screen.text.trim_end());
        // With the pane open: the next batch, which the totals then count.
        if batches == 1 {
            send(&client)?;
        }
    }
    daemon.stop()?;
    let off = lab.daemon_services_off()?;
    let screen = pane.wait_for("the daemon's --services off", |s| {
        s.text.contains(
            "no services: per-service counting is off (--services off, or no cgroup2 mount: see the daemon's log)",
        )
    })?;
    println!("{}", screen.text.trim_end());
    ensure!(
        !screen.text.contains("web.service"),
        "the services of the daemon before stayed on screen"
    );
    pane.keys(&["s"])?;
    pane.wait_for("the peers again", |s| {
        s.text.contains(&format!("peers of {ALIAS} ({ALIAS})"))
    })?;
    drop(pane);
    off.stop()?;
    Ok(Outcome::Passed)
}
