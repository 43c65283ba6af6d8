//! Whole Ethernet frames, sent and received with AF_PACKET.

use std::{
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use anyhow::{Context, Result, bail, ensure};

use super::RECV_TIMEOUT;
use crate::{Host, frames::ETH_HLEN};

/// An AF_PACKET socket on one interface.
///
/// A sender puts frames on the wire exactly as given, bypassing the IP
/// stack and ARP. A receiver is bound to one ethertype, which the kernel
/// delivers after the TC ingress hook, unlike `ETH_P_ALL` taps that run
/// before it: a frame received here has been counted.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    label: String,
}

impl PacketSocket {
    /// A socket that only sends (protocol 0 receives nothing).
    pub fn sender(host: &Host) -> Result<Self> {
        Self::open(host, 0)
    }

    /// A socket that receives the frames of `ethertype` arriving on `host`.
    pub fn receiver(host: &Host, ethertype: u16) -> Result<Self> {
        let socket = Self::open(host, ethertype.to_be())?;
        let timeout = libc::timeval {
            tv_sec: RECV_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: a timeval of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                socket.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("SO_RCVTIMEO");
        }
        Ok(socket)
    }

    /// `protocol` in network byte order, as AF_PACKET wants it.
    fn open(host: &Host, protocol: u16) -> Result<Self> {
        let ifindex = i32::try_from(host.ifindex()?)?;
        let label = format!("{} in {}", host.ifname, host.ns.name());
        // SAFETY: plain socket(2); the fd is owned right away below.
        let fd = host.ns.enter(|| unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(protocol))
        })?;
        if fd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("AF_PACKET socket on {label}"));
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut at = sockaddr(ifindex);
        at.sll_protocol = protocol;
        // SAFETY: a sockaddr_ll of the stated size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const at).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("failed to bind an AF_PACKET socket to {label}"));
        }
        Ok(Self { fd, ifindex, label })
    }

    /// Sends `frame`, Ethernet header included, out of the interface.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        ensure!(frame.len() >= ETH_HLEN, "a frame needs an Ethernet header");
        let mut to = sockaddr(self.ifindex);
        // Network byte order, as it stands in the frame.
        to.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        to.sll_halen = 6;
        to.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: valid buffers of the stated lengths.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const to).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!(
                    "failed to send a {}-byte frame on {}",
                    frame.len(),
                    self.label
                )
            });
        }
        ensure!(
            sent as usize == frame.len(),
            "sent {sent} of {} bytes on {}",
            frame.len(),
            self.label
        );
        Ok(())
    }

    /// The next frame, Ethernet header included.
    pub fn recv(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        // SAFETY: a buffer of the stated length.
        let got = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if got < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                bail!("no frame arrived on {} within {RECV_TIMEOUT:?}", self.label);
            }
            return Err(err).with_context(|| format!("recv on {}", self.label));
        }
        buf.truncate(got as usize);
        Ok(buf)
    }
}

fn sockaddr(ifindex: i32) -> libc::sockaddr_ll {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex;
    addr
}
