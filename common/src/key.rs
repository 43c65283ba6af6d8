//! Map keys and values, laid out identically for the kernel and user space.

#[cfg(feature = "user")]
pub(crate) mod user;

use bytemuck::{Pod, Zeroable};

/// Which way a packet crossed the interface, as stored in map keys.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Ingress, keyed by destination address.
    Rx = 0,
    /// Egress, keyed by source address.
    Tx = 1,
}

/// Address family of [`AddrKey::addr`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// The first four bytes of `addr` hold the address; the rest are zero.
    Ipv4 = 4,
    Ipv6 = 6,
}

/// The bucket of an [`OtherKey`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OtherKind {
    /// Frames that are not well-formed IPv4 or IPv6 (ARP, LLDP, truncated or
    /// malformed IP headers). Counted in L2 frame bytes.
    NonIp = 0,
    /// IP packets whose address could not get an entry because its
    /// family's address map was full. Counted in IP-layer bytes.
    Overflow = 1,
    /// Counts of foreign addresses whose idle entries user space removed
    /// from the address maps to make room. Only user space writes
    /// this bucket.
    Evicted = 2,
}

/// Key of layout v1's address map ([`crate::names::ADDRESSES`]), which an
/// upgrade leaves pinned and user space still reads as carried-over counts.
/// The programs write [`Addr4Key`] and [`Addr6Key`] since layout v2.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct AddrKey {
    /// Interface the packet was seen on, host byte order.
    pub ifindex: u32,
    /// A [`Direction`] discriminant.
    pub direction: u8,
    /// A [`Family`] discriminant.
    pub family: u8,
    pub _pad: [u8; 2],
    /// Network byte order, as on the wire. IPv4 uses the first four bytes.
    pub addr: [u8; 16],
}

/// Bit of [`Addr4Key::if_dir`] and [`Addr6Key::if_dir`] that holds the
/// [`Direction`]. The kernel's ifindex is a positive `int`, so it never
/// reaches it.
pub const DIRECTION_BIT: u32 = 1 << 31;

/// Key of the IPv4 address map ([`crate::names::ADDRESSES_V4`]): 8 bytes,
/// so that the kernel hashes and compares two words per packet, not six.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Addr4Key {
    /// The interface's ifindex, host byte order, with [`DIRECTION_BIT`]
    /// set for [`Direction::Tx`].
    pub if_dir: u32,
    /// Network byte order, as on the wire.
    pub addr: [u8; 4],
}

/// Key of the IPv6 address map ([`crate::names::ADDRESSES_V6`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct Addr6Key {
    /// As [`Addr4Key::if_dir`].
    pub if_dir: u32,
    /// Network byte order, as on the wire.
    pub addr: [u8; 16],
}

/// Key of the `non_ip`/`overflow` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct OtherKey {
    /// Interface the packet was seen on, host byte order.
    pub ifindex: u32,
    /// A [`Direction`] discriminant.
    pub direction: u8,
    /// An [`OtherKind`] discriminant.
    pub kind: u8,
    pub _pad: [u8; 2],
}

/// One CPU's share of a counter. Only `u64` fields: aya pads each CPU's slot
/// of a per-CPU value to 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct Counters {
    /// Wire packets (a GSO/GRO skb counts as its segments), host byte order.
    pub packets: u64,
    /// Bytes, host byte order: IP-layer bytes for addresses and `overflow`,
    /// frame bytes for `non_ip`.
    pub bytes: u64,
}

const _: () = assert!(size_of::<AddrKey>() == 24);
const _: () = assert!(size_of::<Addr4Key>() == 8);
const _: () = assert!(size_of::<Addr6Key>() == 20);
const _: () = assert!(size_of::<OtherKey>() == 8);
const _: () = assert!(size_of::<Counters>() == 16);

impl AddrKey {
    pub const fn ipv4(ifindex: u32, direction: Direction, addr: [u8; 4]) -> Self {
        let mut bytes = [0; 16];
        bytes[0] = addr[0];
        bytes[1] = addr[1];
        bytes[2] = addr[2];
        bytes[3] = addr[3];
        Self {
            ifindex,
            direction: direction as u8,
            family: Family::Ipv4 as u8,
            _pad: [0; 2],
            addr: bytes,
        }
    }

    pub const fn ipv6(ifindex: u32, direction: Direction, addr: [u8; 16]) -> Self {
        Self {
            ifindex,
            direction: direction as u8,
            family: Family::Ipv6 as u8,
            _pad: [0; 2],
            addr,
        }
    }
}

/// The [`Addr4Key::if_dir`] word of an interface and direction.
#[inline(always)]
pub const fn if_dir(ifindex: u32, direction: Direction) -> u32 {
    match direction {
        Direction::Rx => ifindex,
        Direction::Tx => ifindex | DIRECTION_BIT,
    }
}

impl Addr4Key {
    #[inline(always)]
    pub const fn new(ifindex: u32, direction: Direction, addr: [u8; 4]) -> Self {
        Self {
            if_dir: if_dir(ifindex, direction),
            addr,
        }
    }
}

impl Addr6Key {
    #[inline(always)]
    pub const fn new(ifindex: u32, direction: Direction, addr: [u8; 16]) -> Self {
        Self {
            if_dir: if_dir(ifindex, direction),
            addr,
        }
    }

    /// The key of an address given as four words that hold its bytes in
    /// memory order, as loaded from the frame: copied as words, where a
    /// `[u8; 16]` argument is copied byte by byte on BPF.
    #[inline(always)]
    pub fn from_words(ifindex: u32, direction: Direction, words: [u32; 4]) -> Self {
        Self::new(ifindex, direction, bytemuck::cast(words))
    }
}

impl OtherKey {
    pub const fn new(ifindex: u32, direction: Direction, kind: OtherKind) -> Self {
        Self {
            ifindex,
            direction: direction as u8,
            kind: kind as u8,
            _pad: [0; 2],
        }
    }
}

impl Counters {
    pub const fn new(packets: u64, bytes: u64) -> Self {
        Self { packets, bytes }
    }
}
