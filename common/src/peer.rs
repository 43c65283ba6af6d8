//! The peer tables: per (interface, local address, remote address or
//! prefix), the packets and bytes each way and when the pair was first and
//! last seen, laid out identically for the kernel and user space. One
//! table per family, as for the addresses: the kernel hashes and compares
//! the whole key on every packet, and an IPv4 pair needs 16 bytes of it
//! where a [`PeerKey`] takes 40.
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

/// Key of [`crate::names::PEERS`], the IPv6 table, and the one key user
/// space lists the pairs of both families under.
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

/// Key of [`crate::names::PEERS_V4`], the IPv4 table.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct Peer4Key {
    /// Interface the packets were seen on, host byte order.
    pub ifindex: u32,
    /// This host's side, network byte order.
    pub local: [u8; 4],
    /// The other side, its host bits past `prefix` zeroed; network byte
    /// order.
    pub remote: [u8; 4],
    /// Prefix length `remote` was cut to (32: one address).
    pub prefix: u8,
    pub _pad: [u8; 3],
}

/// How far the coarse clock must have moved past a pair's `last_seen_ns`
/// before a packet writes it again: a busy pair then stores the time once
/// a second rather than on every packet, so `last_seen_ns` trails the
/// pair's latest packet by less than this.
pub const LAST_SEEN_STEP_NS: u64 = 1_000_000_000;

/// Value of [`crate::names::PEERS`] and [`crate::names::PEERS_V4`]. Every
/// field is host byte order.
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
    /// The same clock at the latest packet, to within
    /// [`LAST_SEEN_STEP_NS`].
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
const _: () = assert!(size_of::<Peer4Key>() == 16);
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

    /// An IPv6 key from addresses given as four words that hold their
    /// bytes in memory order, as loaded from the frame: copied as words,
    /// where a `[u8; 16]` argument is copied byte by byte on BPF.
    #[inline(always)]
    pub fn ipv6_words(ifindex: u32, local: [u32; 4], remote: [u32; 4], prefix: u8) -> Self {
        Self {
            ifindex,
            family: Family::Ipv6 as u8,
            prefix,
            _pad: [0; 2],
            local: bytemuck::cast(local),
            remote: bytemuck::cast(remote),
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

impl Peer4Key {
    /// The key user space lists this pair under.
    pub const fn widen(&self) -> PeerKey {
        PeerKey::ipv4(self.ifindex, self.local, self.remote, self.prefix)
    }

    /// The key of the not-recorded counter of this pair's local address.
    pub const fn missed(&self) -> PeerMissKey {
        PeerMissKey {
            ifindex: self.ifindex,
            family: Family::Ipv4 as u8,
            _pad: [0; 3],
            local: widen(self.local),
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
