//! The peer table: per (interface, local address, remote address or
//! prefix), the packets and bytes each way and when the pair was first and
//! last seen, laid out identically for the kernel and user space.
//!
//! Unlike the address map these are plain (not per-CPU) hash values updated
//! with atomic adds: the table is sized in the hundreds of thousands of
//! entries, and a per-CPU value would multiply its memory by the CPU count.

#[cfg(feature = "user")]
mod user;

use bytemuck::{Pod, Zeroable};
#[cfg(feature = "user")]
pub use user::prefix_mask;

use crate::{Counters, Direction, Family};

/// Key of [`crate::names::PEERS`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct PeerKey {
    /// Interface the packets were seen on, host byte order.
    pub ifindex: u32,
    /// A [`Family`] discriminant, for both addresses.
    pub family: u8,
    /// Prefix length `remote` was cut to (32 or 128: one address).
    pub prefix: u8,
    pub _pad: [u8; 2],
    /// This host's side: the destination on ingress, the source on egress.
    /// Network byte order; IPv4 uses the first four bytes.
    pub local: [u8; 16],
    /// The other side, its host bits past `prefix` zeroed. Network byte
    /// order; IPv4 uses the first four bytes.
    pub remote: [u8; 16],
}

/// Value of [`crate::names::PEERS`]. Every field is host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PeerCounts {
    /// Wire packets and IP-layer bytes from the peer (ingress).
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Wire packets and IP-layer bytes to the peer (egress).
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC, at tick granularity)
    /// of the packet that created the entry.
    pub first_seen_ns: u64,
    /// The same clock at the latest packet.
    pub last_seen_ns: u64,
}

/// Key of [`crate::names::PEERS_MISSED`]: the packets of one local address
/// whose pair found the peer table full. Its value is a [`Counters`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct PeerMissKey {
    /// Host byte order.
    pub ifindex: u32,
    /// A [`Family`] discriminant.
    pub family: u8,
    pub _pad: [u8; 3],
    /// Network byte order; IPv4 uses the first four bytes.
    pub local: [u8; 16],
}

const _: () = assert!(size_of::<PeerKey>() == 40);
const _: () = assert!(size_of::<PeerCounts>() == 48);
const _: () = assert!(size_of::<PeerMissKey>() == 24);

const fn widen(addr: [u8; 4]) -> [u8; 16] {
    let mut bytes = [0; 16];
    bytes[0] = addr[0];
    bytes[1] = addr[1];
    bytes[2] = addr[2];
    bytes[3] = addr[3];
    bytes
}

impl PeerKey {
    pub const fn ipv4(ifindex: u32, local: [u8; 4], remote: [u8; 4], prefix: u8) -> Self {
        Self {
            ifindex,
            family: Family::Ipv4 as u8,
            prefix,
            _pad: [0; 2],
            local: widen(local),
            remote: widen(remote),
        }
    }

    pub const fn ipv6(ifindex: u32, local: [u8; 16], remote: [u8; 16], prefix: u8) -> Self {
        Self {
            ifindex,
            family: Family::Ipv6 as u8,
            prefix,
            _pad: [0; 2],
            local,
            remote,
        }
    }

    /// The key of the not-recorded counter of this pair's local address.
    pub const fn missed(&self) -> PeerMissKey {
        PeerMissKey {
            ifindex: self.ifindex,
            family: self.family,
            _pad: [0; 3],
            local: self.local,
        }
    }
}

impl PeerCounts {
    /// A new entry for one packet (or aggregate) of `wire` seen at `now`.
    pub const fn first(dir: Direction, wire: Counters, now: u64) -> Self {
        let (rx, tx) = match dir {
            Direction::Rx => (wire, Counters::new(0, 0)),
            Direction::Tx => (Counters::new(0, 0), wire),
        };
        Self {
            rx_packets: rx.packets,
            rx_bytes: rx.bytes,
            tx_packets: tx.packets,
            tx_bytes: tx.bytes,
            first_seen_ns: now,
            last_seen_ns: now,
        }
    }
}
