//! UDP to a closed port and TCP SYNs to a closed port on an alias that no
//! service uses: its `unserved` equals exactly what was sent, and no
//! service received anything on it.

use std::{
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Result, ensure};
use lab::{ip, traffic, units::UnitLab};

use super::fixture::{address_of, services};
use crate::{Outcome, check_eq};

const DATAGRAMS: u64 = 6;
const PAYLOAD: u64 = 50;
const SYNS: u64 = 4;
/// A SYN with the options `fix_headers` sets: 20 IP + 40 TCP bytes.
const SYN_BYTES: u64 = 60;

pub fn run() -> Result<Outcome> {
    let lab = UnitLab::new("10.82.0", &[13])?;
    traffic::fix_headers(&lab.veth)?;
    let daemon = lab.daemon()?;
    let client = traffic::udp_socket(&lab.veth.client.ns, "10.82.0.1:0".parse()?)?;
    let closed_udp: SocketAddr = "10.82.0.13:9999".parse()?;
    for _ in 0..DATAGRAMS {
        client.send_to(&[7; PAYLOAD as usize], closed_udp)?;
    }
    let closed_tcp: SocketAddr = "10.82.0.13:9998".parse()?;
    for _ in 0..SYNS {
        // Refused by the RST the kernel answers the SYN with.
        let refused = lab
            .veth
            .client
            .ns
            .enter(|| TcpStream::connect_timeout(&closed_tcp, Duration::from_secs(5)))?;
        ensure!(
            refused
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "connecting to a closed port: {refused:?}"
        );
    }
    // The SYNs were answered, so they crossed the hooks; the datagrams
    // went first over the same veth.
    let doc = services(&lab.veth)?;
    let dead = address_of(&doc, ip("10.82.0.13"));
    check_eq(
        "unserved on the alias nobody serves",
        &Some((
            DATAGRAMS + SYNS,
            DATAGRAMS * (28 + PAYLOAD) + SYNS * SYN_BYTES,
        )),
        &dead.map(|a| (a.unserved.rx_packets, a.unserved.rx_bytes)),
    )?;
    // No socket received anything on it. The kernel's answers (RSTs and
    // port unreachables, sent from its own sockets in the root cgroup) are
    // the only traffic a service row shows: transmit of cgroup "/".
    let delivered: Vec<(String, u64, u64)> = dead
        .map(|a| {
            a.services
                .iter()
                .map(|s| (s.label().to_owned(), s.rx_packets, s.rx_bytes))
                .collect()
        })
        .unwrap_or_default();
    check_eq(
        "delivered to any socket on it",
        &vec![("/".to_owned(), 0, 0)],
        &delivered,
    )?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}
