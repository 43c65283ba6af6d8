//! An undocumented IPv4 alias and a documented IPv6 one appear and vanish
//! while UDP flows to them: every change logged promptly, the state and
//! host details following, and the counts exact throughout.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Result, ensure};
use lab::{
    Count, Daemon, Veth,
    aliases::{self, Aliases, State},
    background::{self, Background, Echoed, Pace},
    harness::{Case, Outcome},
    ip,
    link::Ipv6,
    poll::EVENTS,
    served::{Listen, Served},
    traffic,
};

use crate::{CLIENT_PORT, PATIENCE, SERVER_PORT, change_and_expect_log};

/// At most this many datagrams per flow, so a flow that is never stopped
/// still ends (40 s at one per 2 ms).
const FLOW_LIMIT: u64 = 20_000;

/// Sizes differ per family and direction, so misfiled counts show.
const REQUEST4: usize = 111;
const REPLY4: usize = 22;
const REQUEST6: usize = 333;
const REPLY6: usize = 44;

pub const CASE: Case = ("alias_comes_and_goes_while_udp_flows", run);

fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::On)?;
    let (client4, client6) = (ip("10.75.0.1"), ip("fd00:75::1"));
    let (primary4, primary6) = (ip("10.75.0.2"), ip("fd00:75::2"));
    // The IPv4 alias is undocumented (foreign once it leaves), the IPv6 one
    // documented (absent once it leaves).
    let (alias4, alias6) = (ip("10.75.0.7"), ip("fd00:75::7"));
    veth.client.add_addr(client4, 24)?;
    veth.client.add_addr(client6, 64)?;
    veth.server.add_addr(primary4, 24)?;
    veth.server.add_addr(primary6, 64)?;
    // The client reaches the aliases by MAC before the server holds them,
    // as it would reach a VIP through a stale neighbour entry.
    veth.know_each_other(&[client4, client6], &[primary4, primary6, alias4, alias6])?;
    // The echo servers bind to the aliases before they exist, so that they
    // answer from the very first datagram that the stack delivers.
    veth.server.ns.sysctl("net.ipv4.ip_nonlocal_bind", "1")?;
    veth.server.ns.sysctl("net.ipv6.ip_nonlocal_bind", "1")?;

    let served = Served::new(
        "inv",
        &veth.server,
        "[[alias]]\nname = \"api-v6\"\naddress = \"fd00:75::7\"\nowner = \"api-team\"\npurpose = \"REST API over IPv6\"\n",
        Listen::Default,
    )?;
    let daemon = served.start(&veth.server)?;
    let inventory = || aliases::aliases(&veth.server.ns, &served.pins, &served.config);
    let flows = Flows::start(&veth, [client4, client6], [alias4, alias6])?;

    // Before the aliases exist the server drops the datagrams, but its
    // ingress hook has counted them by destination already.
    let before = EVENTS.until(
        "datagrams to the aliases counted before they exist",
        PATIENCE,
        inventory,
        |a| {
            [alias4, alias6]
                .iter()
                .all(|&x| a.row(x).is_ok_and(|r| r.rx.packets >= 3))
        },
    )?;
    ensure!(before.row(alias4)?.state == State::Foreign, "{before:#?}");
    ensure!(before.row(alias6)?.state == State::Absent, "{before:#?}");
    ensure!(
        flows.echoed4.received.load(Ordering::SeqCst) == 0
            && flows.echoed6.received.load(Ordering::SeqCst) == 0,
        "a server received a datagram for an address it does not hold"
    );

    add_both(&daemon, &veth, &flows)?;
    let present = inventory()?;
    check_present(&present, alias4, alias6)?;
    remove_both(&daemon, &veth, &flows)?;
    let expected = flows.finish(alias4, alias6)?;

    // Every datagram was sent before this; wait until the last ones have
    // crossed the veth, then the counts must be exact.
    let after = EVENTS.until(
        "all sent datagrams counted",
        PATIENCE,
        inventory,
        |a: &Aliases| {
            expected
                .iter()
                .all(|(x, rx, _, _)| a.row(*x).is_ok_and(|r| r.rx.packets >= rx.packets))
        },
    )?;
    check_exact(&after, &expected)?;
    ensure!(
        after.row(alias6)?.alias.as_deref() == Some("api-v6"),
        "the absent alias lost its name"
    );
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// A flow from the client to each alias, and an echo server on each.
struct Flows {
    sent4: Arc<AtomicU64>,
    sent6: Arc<AtomicU64>,
    echoed4: Arc<Echoed>,
    echoed6: Arc<Echoed>,
    server4: Background<Result<()>>,
    server6: Background<Result<()>>,
    flow4: Background<Result<u64>>,
    flow6: Background<Result<u64>>,
}

impl Flows {
    fn start(
        veth: &Veth,
        [client4, client6]: [IpAddr; 2],
        [alias4, alias6]: [IpAddr; 2],
    ) -> Result<Self> {
        let sent4 = Arc::new(AtomicU64::new(0));
        let sent6 = Arc::new(AtomicU64::new(0));
        let echoed4 = Arc::new(Echoed::default());
        let echoed6 = Arc::new(Echoed::default());
        let server4 = background::echo(
            traffic::udp_socket(&veth.server.ns, SocketAddr::new(alias4, SERVER_PORT))?,
            REPLY4,
            echoed4.clone(),
        )?;
        let server6 = background::echo(
            traffic::udp_socket(&veth.server.ns, SocketAddr::new(alias6, SERVER_PORT))?,
            REPLY6,
            echoed6.clone(),
        )?;
        let pace = |to: IpAddr, payload: usize| Pace {
            to: SocketAddr::new(to, SERVER_PORT),
            payload,
            every: Duration::from_millis(2),
            limit: FLOW_LIMIT,
        };
        let flow4 = background::flow(
            traffic::udp_socket(&veth.client.ns, SocketAddr::new(client4, CLIENT_PORT))?,
            pace(alias4, REQUEST4),
            sent4.clone(),
        );
        let flow6 = background::flow(
            traffic::udp_socket(&veth.client.ns, SocketAddr::new(client6, CLIENT_PORT))?,
            pace(alias6, REQUEST6),
            sent6.clone(),
        );
        Ok(Self {
            sent4,
            sent6,
            echoed4,
            echoed6,
            server4,
            server6,
            flow4,
            flow6,
        })
    }

    fn sent(&self) -> (u64, u64) {
        (
            self.sent4.load(Ordering::SeqCst),
            self.sent6.load(Ordering::SeqCst),
        )
    }

    /// Stops everything; per alias, what must have been counted in and
    /// out, and its state once gone.
    fn finish(self, alias4: IpAddr, alias6: IpAddr) -> Result<[(IpAddr, Count, Count, State); 2]> {
        let total4 = self.flow4.finish()?;
        let total6 = self.flow6.finish()?;
        self.server4.finish()?;
        self.server6.finish()?;
        let replied4 = self.echoed4.replied.load(Ordering::SeqCst);
        let replied6 = self.echoed6.replied.load(Ordering::SeqCst);
        Ok([
            (
                alias4,
                Count::datagram(alias4, REQUEST4).times(total4),
                Count::datagram(alias4, REPLY4).times(replied4),
                State::Foreign,
            ),
            (
                alias6,
                Count::datagram(alias6, REQUEST6).times(total6),
                Count::datagram(alias6, REPLY6).times(replied6),
                State::Absent,
            ),
        ])
    }
}

/// Both aliases appear, each logged promptly, and both servers answer.
fn add_both(daemon: &Daemon, veth: &Veth, flows: &Flows) -> Result<()> {
    let srv = &veth.server;
    change_and_expect_log(
        daemon,
        &srv.ns,
        &[
            "addr",
            "add",
            "10.75.0.7/24",
            "dev",
            &srv.ifname,
            "label",
            "lab-srv:7",
        ],
        "address 10.75.0.7/24 added on lab-srv (label lab-srv:7): undocumented",
    )?;
    change_and_expect_log(
        daemon,
        &srv.ns,
        &["addr", "add", "fd00:75::7/64", "dev", &srv.ifname, "nodad"],
        "address fd00:75::7/64 added on lab-srv: alias \"api-v6\" is documented",
    )?;
    EVENTS.until(
        "both servers answering",
        PATIENCE,
        || {
            Ok((
                flows.echoed4.replied.load(Ordering::SeqCst),
                flows.echoed6.replied.load(Ordering::SeqCst),
            ))
        },
        |&(r4, r6)| r4 >= 5 && r6 >= 5,
    )?;
    Ok(())
}

fn check_present(present: &Aliases, alias4: IpAddr, alias6: IpAddr) -> Result<()> {
    let (row4, row6) = (present.row(alias4)?, present.row(alias6)?);
    for (row, state, label, alias) in [
        (row4, State::Undocumented, Some("lab-srv:7"), None),
        (row6, State::Documented, None, Some("api-v6")),
    ] {
        ensure!(
            row.state == state
                && row.interface.as_deref() == Some("lab-srv")
                && row.label.as_deref() == label
                && row.alias.as_deref() == alias
                && row.tx.packets > 0
                && row.rx.packets > row.tx.packets,
            "while present: {row:#?}"
        );
    }
    ensure!(
        row6.owner.as_deref() == Some("api-team")
            && row6.purpose.as_deref() == Some("REST API over IPv6"),
        "{row6:#?}"
    );
    Ok(())
}

/// Both aliases go, each logged promptly, and the flows keep going into
/// the void for a while: still counted on ingress.
fn remove_both(daemon: &Daemon, veth: &Veth, flows: &Flows) -> Result<()> {
    let srv = &veth.server;
    change_and_expect_log(
        daemon,
        &srv.ns,
        &["addr", "del", "10.75.0.7/24", "dev", &srv.ifname],
        "address 10.75.0.7/24 removed from lab-srv (label lab-srv:7): foreign",
    )?;
    change_and_expect_log(
        daemon,
        &srv.ns,
        &["addr", "del", "fd00:75::7/64", "dev", &srv.ifname],
        "address fd00:75::7/64 removed from lab-srv: alias \"api-v6\" is absent",
    )?;
    let (at4, at6) = flows.sent();
    EVENTS.until(
        "datagrams sent after the removal",
        PATIENCE,
        || Ok(flows.sent()),
        |&(s4, s6)| s4 >= at4 + 5 && s6 >= at6 + 5,
    )?;
    Ok(())
}

fn check_exact(after: &Aliases, expected: &[(IpAddr, Count, Count, State)]) -> Result<()> {
    for &(address, rx, tx, state) in expected {
        let row = after.row(address)?;
        println!(
            "  {address}: sent {rx}, replied {tx}; counted rx {}, tx {}; {:?}",
            row.rx(),
            row.tx(),
            row.state
        );
        ensure!(
            row.rx() == rx && row.tx() == tx && row.state == state,
            "{address}: expected rx {rx}, tx {tx}, {state:?}; got {row:#?}"
        );
        ensure!(
            row.interface.is_none() && row.label.is_none() && row.flags.is_empty(),
            "a removed address still has host details: {row:#?}"
        );
        ensure!(
            row.seen_on.len() == 1
                && row.seen_on[0].interface == "lab-srv"
                && Count::from(row.seen_on[0].rx) == rx
                && Count::from(row.seen_on[0].tx) == tx,
            "{row:#?}"
        );
    }
    Ok(())
}
