//! UDP between two sockets bound to given addresses.

use std::net::{SocketAddr, UdpSocket};

use anyhow::{Context, Result, ensure};

use super::RECV_TIMEOUT;
use crate::Netns;

/// A UDP socket bound to `addr` inside `ns`.
pub fn udp_socket(ns: &Netns, addr: SocketAddr) -> Result<UdpSocket> {
    let socket = ns
        .enter(|| UdpSocket::bind(addr))?
        .with_context(|| format!("failed to bind UDP {addr} in {}", ns.name()))?;
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    Ok(socket)
}

/// `from` sends a datagram of `payload` bytes to `to`; returns once `to`
/// has received it.
pub fn one_way(from: &UdpSocket, to: &UdpSocket, payload: usize) -> Result<()> {
    let dst = to.local_addr()?;
    let src = from.local_addr()?;
    send(from, payload, dst)?;
    receive(to, payload, src)
}

/// A request of `request` bytes from `client` to `server`, then a reply of
/// `reply` bytes back from the server's bound address.
pub fn exchange(
    client: &UdpSocket,
    server: &UdpSocket,
    request: usize,
    reply: usize,
) -> Result<()> {
    one_way(client, server, request)?;
    one_way(server, client, reply)
}

fn send(socket: &UdpSocket, payload: usize, to: SocketAddr) -> Result<()> {
    let from = socket.local_addr()?;
    let sent = socket
        .send_to(&vec![0xa5; payload], to)
        .with_context(|| format!("failed to send {payload} bytes from {from} to {to}"))?;
    ensure!(
        sent == payload,
        "sent {sent} of {payload} bytes from {from} to {to}"
    );
    Ok(())
}

fn receive(socket: &UdpSocket, payload: usize, from: SocketAddr) -> Result<()> {
    let at = socket.local_addr()?;
    let mut buf = vec![0; 65536];
    let (got, sender) = socket
        .recv_from(&mut buf)
        .with_context(|| format!("{at} received nothing from {from} within {RECV_TIMEOUT:?}"))?;
    ensure!(
        got == payload && sender == from,
        "{at} expected {payload} bytes from {from}, got {got} from {sender}"
    );
    Ok(())
}
