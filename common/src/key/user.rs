//! User-space views of the shared types.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use crate::{
    Addr4Key, Addr6Key, AddrKey, Counters, DIRECTION_BIT, Direction, Family, OtherKey, OtherKind,
};

// SAFETY: each of these is `repr(C)`, fully initialised and
// `bytemuck::Pod`, which checks that it has no padding or invalid values.
unsafe impl aya::Pod for AddrKey {}
// SAFETY: as above.
unsafe impl aya::Pod for OtherKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Addr4Key {}
// SAFETY: as above.
unsafe impl aya::Pod for Addr6Key {}
// SAFETY: as above.
unsafe impl aya::Pod for Counters {}

impl Direction {
    pub const ALL: [Self; 2] = [Self::Rx, Self::Tx];

    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Rx),
            1 => Some(Self::Tx),
            _ => None,
        }
    }

    /// The short form of tables, `dump` and the JSON API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rx => "rx",
            Self::Tx => "tx",
        }
    }

    /// The word Prometheus metric names and `direction` labels use, as
    /// node_exporter's `receive`/`transmit`.
    pub const fn metric_name(self) -> &'static str {
        match self {
            Self::Rx => "receive",
            Self::Tx => "transmit",
        }
    }

    /// The side of the interface a program attaches to, as the kernel and
    /// the link pins name it.
    pub const fn hook_side(self) -> &'static str {
        match self {
            Self::Rx => "ingress",
            Self::Tx => "egress",
        }
    }
}

impl serde::Serialize for Direction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Direction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown direction `{text}`")))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OtherKind {
    /// The buckets the kernel side writes.
    pub const KERNEL: [Self; 2] = [Self::NonIp, Self::Overflow];

    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::NonIp),
            1 => Some(Self::Overflow),
            2 => Some(Self::Evicted),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NonIp => "non_ip",
            Self::Overflow => "overflow",
            Self::Evicted => "evicted",
        }
    }
}

impl fmt::Display for OtherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AddrKey {
    pub fn new(ifindex: u32, direction: Direction, addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => Self::ipv4(ifindex, direction, a.octets()),
            IpAddr::V6(a) => Self::ipv6(ifindex, direction, a.octets()),
        }
    }

    /// The address, or `None` for a family byte the program never writes.
    pub fn ip(&self) -> Option<IpAddr> {
        ip_of(self.family, self.addr)
    }

    pub fn dir(&self) -> Option<Direction> {
        Direction::from_u8(self.direction)
    }
}

/// The interface and direction of an [`Addr4Key::if_dir`] word.
fn split_if_dir(if_dir: u32) -> (u32, Direction) {
    let direction = if if_dir & DIRECTION_BIT == 0 {
        Direction::Rx
    } else {
        Direction::Tx
    };
    (if_dir & !DIRECTION_BIT, direction)
}

impl Addr4Key {
    pub fn ifindex(&self) -> u32 {
        split_if_dir(self.if_dir).0
    }

    pub fn dir(&self) -> Direction {
        split_if_dir(self.if_dir).1
    }

    pub fn ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }
}

impl Addr6Key {
    pub fn ifindex(&self) -> u32 {
        split_if_dir(self.if_dir).0
    }

    pub fn dir(&self) -> Direction {
        split_if_dir(self.if_dir).1
    }

    pub fn ip(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }
}

impl OtherKey {
    pub fn dir(&self) -> Option<Direction> {
        Direction::from_u8(self.direction)
    }

    pub fn other_kind(&self) -> Option<OtherKind> {
        OtherKind::from_u8(self.kind)
    }
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, rhs: Self) {
        self.packets = self.packets.wrapping_add(rhs.packets);
        self.bytes = self.bytes.wrapping_add(rhs.bytes);
    }
}

impl std::iter::Sum for Counters {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |mut acc, c| {
            acc += c;
            acc
        })
    }
}

/// The address in a key's `family` byte and 16 address bytes (IPv4 in the
/// first four), or `None` for a family byte the programs never write.
pub(crate) fn ip_of(family: u8, addr: [u8; 16]) -> Option<IpAddr> {
    match family {
        f if f == Family::Ipv4 as u8 => {
            let [a, b, c, d, ..] = addr;
            Some(Ipv4Addr::new(a, b, c, d).into())
        }
        f if f == Family::Ipv6 as u8 => Some(Ipv6Addr::from(addr).into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_key_round_trips() {
        for addr in ["192.168.1.100", "0.0.0.0", "2001:db8::1", "::ffff:10.0.0.1"] {
            let ip: IpAddr = addr.parse().unwrap();
            let key = AddrKey::new(3, Direction::Tx, ip);
            assert_eq!(key.ip(), Some(ip));
            assert_eq!(key.dir(), Some(Direction::Tx));
            assert_eq!(key.ifindex, 3);
        }
    }

    #[test]
    fn family_keys_round_trip() {
        // The largest ifindex the kernel hands out (a positive int).
        for (ifindex, direction) in [(1, Direction::Rx), (i32::MAX as u32, Direction::Tx)] {
            let v4 = Addr4Key::new(ifindex, direction, [192, 0, 2, 1]);
            assert_eq!(
                (v4.ifindex(), v4.dir(), v4.ip()),
                (ifindex, direction, Ipv4Addr::new(192, 0, 2, 1))
            );
            let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
            let v6 = Addr6Key::new(ifindex, direction, ip.octets());
            assert_eq!((v6.ifindex(), v6.dir(), v6.ip()), (ifindex, direction, ip));
        }
        assert_eq!(Addr4Key::new(7, Direction::Tx, [0; 4]).if_dir, 7 | 1 << 31);
    }

    #[test]
    fn unknown_discriminants_are_rejected() {
        let mut key = AddrKey::new(1, Direction::Rx, "10.0.0.1".parse().unwrap());
        key.family = 5;
        assert_eq!(key.ip(), None);
        assert_eq!(Direction::from_u8(2), None);
        assert_eq!(OtherKind::from_u8(9), None);
    }
}
