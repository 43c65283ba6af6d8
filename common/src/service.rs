//! The per-service map: packets delivered to, and sent from, the sockets of
//! one cgroup v2, per local address.

#[cfg(feature = "user")]
mod user;

use bytemuck::{Pod, Zeroable};

use crate::{Direction, Family};

/// Key of [`crate::names::SERVICES`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ServiceKey {
    /// The cgroup v2 id of the socket's cgroup (the inode number of its
    /// directory on the cgroup2 mount), host byte order.
    pub cgroup: u64,
    /// Interface the packet arrived on (ingress) or leaves by (egress),
    /// host byte order.
    pub ifindex: u32,
    /// A [`Direction`] discriminant: `Rx` is delivered to a socket of the
    /// cgroup (keyed by destination), `Tx` sent from one (keyed by source).
    pub direction: u8,
    /// A [`Family`] discriminant.
    pub family: u8,
    pub _pad: [u8; 2],
    /// Network byte order, as on the wire. IPv4 uses the first four bytes.
    pub addr: [u8; 16],
}

const _: () = assert!(size_of::<ServiceKey>() == 32);

impl ServiceKey {
    pub const fn new(
        cgroup: u64,
        ifindex: u32,
        direction: Direction,
        family: Family,
        addr: [u8; 16],
    ) -> Self {
        Self {
            cgroup,
            ifindex,
            direction: direction as u8,
            family: family as u8,
            _pad: [0; 2],
            addr,
        }
    }
}
