//! IPv4 labels, scopes and IPv6 flags, set before the daemon starts and
//! while it runs, as `aliases --json` and `/api/v1/aliases` show them.

use anyhow::{Result, ensure};
use lab::{
    Daemon, Host, Veth,
    aliases::{self, Aliases, State},
    harness::{Case, Outcome},
    http, ip,
    link::Ipv6,
    poll::EVENTS,
    served::{Listen, Served},
};

use crate::{PATIENCE, change_and_expect_log};

pub const CASE: Case = ("labels_and_ipv6_flags_are_shown", run);

fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::On)?;
    let srv = &veth.server;
    let dev = srv.ifname.as_str();
    // Before the daemon starts (seen in its start-up dump) ...
    for args in [
        &["addr", "add", "10.73.0.2/24", "dev", dev][..],
        &[
            "addr",
            "add",
            "10.73.0.5/24",
            "dev",
            dev,
            "label",
            "lab-srv:1",
        ],
        &["addr", "add", "fd00:73::5/64", "dev", dev, "nodad"],
        &[
            "addr",
            "add",
            "fd00:73::6/64",
            "dev",
            dev,
            "nodad",
            "preferred_lft",
            "0",
        ],
    ] {
        srv.ns.ip(args)?;
    }
    let served = Served::new(
        "labels",
        srv,
        "[[alias]]\nname = \"legacy-web\"\naddress = \"10.73.0.5\"\ninterface = \"lab-srv\"\n",
        Listen::Loopback,
    )?;
    let daemon = served.start(srv)?;
    change_while_running(&daemon, srv)?;

    println!(
        "  ip addr show:\n{}",
        srv.ns.ip(&["addr", "show", "dev", dev])?
    );
    // The one-shot dump (`aliases`) and the daemon's live table
    // (`/api/v1/aliases`) must both say exactly this.
    let dumped = aliases::aliases(&srv.ns, &served.pins, &served.config)?;
    let live = EVENTS.until(
        "the daemon's table following `ip addr change`",
        PATIENCE,
        || Aliases::parse(http::get(&srv.ns, served.listen(), "/api/v1/aliases")?.text()?),
        |a| {
            a.row(ip("fd00:73::5"))
                .is_ok_and(|r| r.flags.iter().any(|f| f == "deprecated"))
        },
    )?;
    for (view, seen) in [("aliases --json", &dumped), ("/api/v1/aliases", &live)] {
        for &(address, prefix_len, label, scope, flags, state) in &EXPECTED {
            let row = seen.row(ip(address))?;
            let want = (label, Some(prefix_len), Some(scope), flags.to_vec(), state);
            ensure!(
                placed_fields(row) == want && row.interface.as_deref() == Some("lab-srv"),
                "{view}: {}: expected {want:?}, got {row:#?}",
                address
            );
        }
    }
    println!("  labels and flags agree in `aliases --json` and /api/v1/aliases");
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// Addresses added and changed while the daemon runs, seen through
/// rtnetlink events.
fn change_while_running(daemon: &Daemon, srv: &Host) -> Result<()> {
    let dev = srv.ifname.as_str();
    // ... and while it runs (seen through rtnetlink events).
    change_and_expect_log(
        daemon,
        &srv.ns,
        &[
            "addr",
            "add",
            "10.73.0.6/24",
            "dev",
            dev,
            "label",
            "lab-srv:web",
        ],
        "address 10.73.0.6/24 added on lab-srv (label lab-srv:web): undocumented",
    )?;
    change_and_expect_log(
        daemon,
        &srv.ns,
        // Another subnet: a secondary must have its primary's scope.
        &["addr", "add", "10.73.1.8/24", "dev", dev, "scope", "link"],
        "address 10.73.1.8/24 added on lab-srv: undocumented",
    )?;
    change_and_expect_log(
        daemon,
        &srv.ns,
        &[
            "addr",
            "add",
            "fd00:73::7/64",
            "dev",
            dev,
            "nodad",
            "noprefixroute",
        ],
        "address fd00:73::7/64 added on lab-srv: undocumented",
    )?;
    // A change to an existing address is no new address (no log line), but
    // the daemon's table must follow it.
    srv.ns.ip(&[
        "addr",
        "change",
        "fd00:73::5/64",
        "dev",
        dev,
        // `change` sets the flags anew: without this, nodad goes.
        "nodad",
        "preferred_lft",
        "0",
    ])?;
    Ok(())
}

/// What `aliases` should say about an address's place on the host: the
/// address, its prefix length, label, scope, flags and state.
type Placed = (
    &'static str,
    u8,
    Option<&'static str>,
    &'static str,
    &'static [&'static str],
    State,
);

/// The host-side fields of `row`, for comparing with a [`Placed`].
fn placed_fields(row: &aliases::Row) -> (Option<&str>, Option<u8>, Option<&str>, Vec<&str>, State) {
    (
        row.label.as_deref(),
        row.prefix_len,
        row.scope.as_deref(),
        row.flags.iter().map(String::as_str).collect(),
        row.state,
    )
}

// The flags as `ip addr` names them, in the daemon's order; an IPv4
// address's label is its interface's name unless set, an IPv6 address
// has none.
// A row an address, as a table reads.
#[rustfmt::skip]
const EXPECTED: [Placed; 7] = [
    ("10.73.0.2", 24, Some("lab-srv"), "global", &["permanent"], State::Undocumented),
    ("10.73.0.5", 24, Some("lab-srv:1"), "global", &["secondary", "permanent"], State::Documented),
    ("10.73.0.6", 24, Some("lab-srv:web"), "global", &["secondary", "permanent"], State::Undocumented),
    ("10.73.1.8", 24, Some("lab-srv"), "link", &["permanent"], State::Undocumented),
    ("fd00:73::5", 64, None, "global", &["nodad", "deprecated", "permanent"], State::Undocumented),
    ("fd00:73::6", 64, None, "global", &["nodad", "deprecated", "permanent"], State::Undocumented),
    ("fd00:73::7", 64, None, "global", &["nodad", "permanent", "noprefixroute"], State::Undocumented),
];
