//! The per-service maps: packets delivered to, and sent from, the sockets
//! of one cgroup v2, per local address. One map per family, as for the
//! address counters, so that an IPv4 key is 16 bytes: the kernel hashes
//! and compares the whole key on every packet.

#[cfg(feature = "user")]
mod user;

use bytemuck::{Pod, Zeroable};

#[cfg(feature = "user")]
pub use self::user::ServiceCell;
use crate::{Addr4Key, Addr6Key, Direction};

/// Key of [`crate::names::SERVICES_V4`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Service4Key {
    /// The cgroup v2 id of the socket's cgroup (the inode number of its
    /// directory on the cgroup2 mount), host byte order.
    pub cgroup: u64,
    /// The interface the packet arrived on (ingress) or leaves by (egress),
    /// and the local address: destination for `Rx` (delivered to a socket
    /// of the cgroup), source for `Tx` (sent from one).
    pub addr: Addr4Key,
}

/// Key of [`crate::names::SERVICES_V6`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Service6Key {
    /// As [`Service4Key::cgroup`].
    pub cgroup: u64,
    /// As [`Service4Key::addr`].
    pub addr: Addr6Key,
    /// Up to the `u64` alignment of `cgroup`; always zero.
    pub _pad: [u8; 4],
}

const _: () = assert!(size_of::<Service4Key>() == 16);
const _: () = assert!(size_of::<Service6Key>() == 32);

impl Service4Key {
    #[inline(always)]
    pub const fn new(cgroup: u64, ifindex: u32, direction: Direction, addr: [u8; 4]) -> Self {
        Self {
            cgroup,
            addr: Addr4Key::new(ifindex, direction, addr),
        }
    }
}

impl Service6Key {
    #[inline(always)]
    pub const fn new(cgroup: u64, addr: Addr6Key) -> Self {
        Self {
            cgroup,
            addr,
            _pad: [0; 4],
        }
    }
}
