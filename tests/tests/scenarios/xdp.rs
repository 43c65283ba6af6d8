//! `--hook xdp` counts ingress exactly as `--hook tc` does: the same UDP
//! plan, run once under each hook over the same link.

use anyhow::Result;
use aya::{programs::ProgramType, sys::is_program_supported};
use lab::{
    BpfDir, Count, Daemon, Dir, Hook, OtherKind, Veth, daemon::Config, dump, link::Ipv6,
    snapshot::AddressTable,
};

use crate::{Outcome, check_eq, print_table, udp};

pub fn run() -> Result<Outcome> {
    if !is_program_supported(ProgramType::Xdp)? {
        return Ok(Outcome::Skipped(
            "the kernel does not load XDP programs".to_owned(),
        ));
    }
    let veth = Veth::new(Ipv6::Off)?;
    let aliases = udp::ipv4_aliases(&veth)?;

    let tc = server_rx(&veth, &aliases, Hook::Tc)?;
    let xdp = server_rx(&veth, &aliases, Hook::Xdp)?;
    check_eq("ingress under tc and under xdp", &tc, &xdp)?;
    Ok(Outcome::Passed)
}

/// Runs the plan under `hook` with fresh pins; checks and returns what the
/// server counted on ingress.
fn server_rx(veth: &Veth, aliases: &udp::Aliases, hook: Hook) -> Result<(AddressTable, Count)> {
    let pins = BpfDir::new("srv")?;
    let daemon = Daemon::start(&Config {
        hook,
        ..Config::new(&veth.server.ns, &pins, &veth.server.ifname)
    })?;
    if hook == Hook::Xdp {
        // veth has native XDP; the generic fallback would see the same
        // frames, but say which path this run exercised.
        let link = veth
            .server
            .ns
            .ip(&["link", "show", "dev", &veth.server.ifname])?;
        let mode = if link.contains("xdpgeneric") {
            "generic"
        } else {
            "native"
        };
        println!("  XDP attached in {mode} mode");
    }
    let expected = udp::send_plan(veth, aliases)?;
    let snap = dump(&veth.server.ns, &pins)?;
    daemon.stop()?;

    let iface = veth.server.ifname.as_str();
    let rx = snap.addresses(iface, Dir::Rx, |_| true);
    let non_ip = snap.other(iface, Dir::Rx, OtherKind::NonIp)
        + snap.other(iface, Dir::Rx, OtherKind::Overflow);
    print_table(&format!("{hook:?} rx"), &rx);
    check_eq(
        &format!("server rx under {hook:?}"),
        &expected.server_rx,
        &rx,
    )?;
    check_eq(
        &format!("server rx non_ip + overflow under {hook:?}"),
        &Count::default(),
        &non_ip,
    )?;
    Ok((rx, non_ip))
}
