//! Two daemons in two namespaces, both with programs on the same cgroup
//! hierarchy: each lists its own namespace's service and not the other's.

use std::net::SocketAddr;

use anyhow::Result;
use lab::{cgroups::Peer, ip, traffic::udp_socket, units::UnitLab};

use super::fixture::{PEER, services};
use crate::{Outcome, check_eq};

pub fn run() -> Result<Outcome> {
    let mut a = UnitLab::new("10.83.0", &[10])?;
    let mut b = UnitLab::new("10.84.0", &[10])?;
    let web = a.unit("web.service")?;
    let mail = b.unit("mail.service")?;
    let daemon_a = a.daemon()?;
    let daemon_b = b.daemon()?;
    let (_web, _) = Peer::start(PEER, &a.veth.server.ns, &web, &["udp-echo", "10.83.0.10:7"])?;
    let (_mail, _) = Peer::start(
        PEER,
        &b.veth.server.ns,
        &mail,
        &["udp-echo", "10.84.0.10:7"],
    )?;
    for (lab, to) in [(&a, "10.83.0.10:7"), (&b, "10.84.0.10:7")] {
        let to: SocketAddr = to.parse()?;
        let client = udp_socket(&lab.veth.client.ns, SocketAddr::new(lab.client, 0))?;
        for _ in 0..3 {
            client.send_to(&[1; 64], to)?;
            client.recv_from(&mut [0; 256])?;
        }
    }
    for (lab, alias, unit) in [
        (&a, "10.83.0.10", "web.service"),
        (&b, "10.84.0.10", "mail.service"),
    ] {
        let doc = services(&lab.veth)?;
        let listed: Vec<(String, String, u64)> = doc
            .addresses
            .iter()
            .flat_map(|x| {
                x.services
                    .iter()
                    .filter(|s| s.unit.is_some())
                    .map(|s| (x.address.to_string(), s.label().to_owned(), s.rx_packets))
            })
            .collect();
        check_eq(
            &format!("the units {unit}'s daemon lists"),
            &vec![(ip(alias).to_string(), unit.to_owned(), 3)],
            &listed,
        )?;
    }
    daemon_a.stop()?;
    daemon_b.stop()?;
    Ok(Outcome::Passed)
}
