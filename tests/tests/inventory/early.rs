//! Right after the daemon logs `ready`: attached, serving, and already
//! knowing the host's addresses.

use anyhow::{Result, ensure};
use lab::{
    Daemon, Veth,
    aliases::{Aliases, State},
    harness::{Case, Outcome},
    http, ip,
    link::Ipv6,
    served::{Listen, Served},
};

use crate::change_and_expect_log;

/// Extra addresses on the server's loopback for the `ready` tests: they
/// make the daemon's first rtnetlink dump take tens of milliseconds, so
/// that if `ready` came before that dump was in, the tests' first action
/// would land inside the gap nearly every time rather than now and then.
const EARLY_ADDRESSES: usize = 10000;

/// A daemon on a link with one documented address, 10.79.0.2, serving
/// HTTP on the server's loopback; returned as soon as it logs `ready`.
struct Early {
    served: Served,
    veth: Veth,
}

impl Early {
    fn new() -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        veth.server.add_addr(ip("10.79.0.2"), 24)?;
        // Not "ready": the lab takes that word anywhere in a log line, and
        // the first line names the alias file's directory.
        let served = Served::new(
            "early",
            &veth.server,
            "[[alias]]\nname = \"primary\"\naddress = \"10.79.0.2\"\n",
            Listen::Loopback,
        )?;
        // Added in one `ip -batch` run: one `ip` per address would take
        // minutes.
        let batch: String = (0..EARLY_ADDRESSES)
            .map(|i| format!("addr add 10.80.{}.{}/32 dev lo\n", i / 250, i % 250 + 1))
            .collect();
        let batch = served.dir.write("batch", &batch)?;
        veth.server.ns.ip(&["-batch", &batch.to_string_lossy()])?;
        Ok(Self { served, veth })
    }

    fn start(&self) -> Result<Daemon> {
        self.served.start(&self.veth.server)
    }
}

pub const LOGGED: Case = (
    "address_added_right_after_ready_is_logged",
    address_added_is_logged,
);

/// `ready` means attached and serving; an address added right after it must
/// be logged like any later one (the audit trail of aliases coming and
/// going).
fn address_added_is_logged() -> Result<Outcome> {
    let early = Early::new()?;
    let daemon = early.start()?;
    let srv = &early.veth.server;
    change_and_expect_log(
        &daemon,
        &srv.ns,
        &["addr", "add", "10.79.0.9/24", "dev", &srv.ifname],
        "address 10.79.0.9/24 added on lab-srv: undocumented",
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}

pub const API: Case = ("api_right_after_ready_knows_the_host", api_knows_the_host);

/// Right after `ready`, `/api/v1/aliases` must know the addresses that were
/// on the host before the daemon started.
fn api_knows_the_host() -> Result<Outcome> {
    let early = Early::new()?;
    let daemon = early.start()?;
    let srv = &early.veth.server;
    let served =
        Aliases::parse(http::get(&srv.ns, early.served.listen(), "/api/v1/aliases")?.text()?)?;
    let row = served.row(ip("10.79.0.2"))?;
    ensure!(
        row.state == State::Documented && row.interface.as_deref() == Some("lab-srv"),
        "/api/v1/aliases right after `ready` does not know the host's addresses: {row:#?}"
    );
    daemon.stop()?;
    Ok(Outcome::Passed)
}
