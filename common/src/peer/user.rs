//! User-space views of the peer table's types.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    Family,
    peer::{Peer4Key, PeerCounts, PeerKey, PeerMissKey},
};

// SAFETY: each is `repr(C)`, fully initialised and `bytemuck::Pod`, which
// checks that it has no padding or invalid values.
unsafe impl aya::Pod for PeerKey {}
// SAFETY: as above.
unsafe impl aya::Pod for Peer4Key {}
// SAFETY: as above.
unsafe impl aya::Pod for PeerCounts {}
// SAFETY: as above.
unsafe impl aya::Pod for PeerMissKey {}

/// An address of `family` held in 16 bytes, or `None` for a family byte the
/// program never writes.
fn ip(family: u8, bytes: [u8; 16]) -> Option<IpAddr> {
    match family {
        f if f == Family::Ipv4 as u8 => {
            let [a, b, c, d, ..] = bytes;
            Some(Ipv4Addr::new(a, b, c, d).into())
        }
        f if f == Family::Ipv6 as u8 => Some(Ipv6Addr::from(bytes).into()),
        _ => None,
    }
}

impl PeerKey {
    pub fn local_ip(&self) -> Option<IpAddr> {
        ip(self.family, self.local)
    }

    pub fn remote_ip(&self) -> Option<IpAddr> {
        ip(self.family, self.remote)
    }

    /// This key as [`crate::names::PEERS_V4`] holds it; `None` for IPv6.
    pub fn narrow(&self) -> Option<Peer4Key> {
        let [l0, l1, l2, l3, ..] = self.local;
        let [r0, r1, r2, r3, ..] = self.remote;
        (self.family == Family::Ipv4 as u8).then_some(Peer4Key {
            ifindex: self.ifindex,
            local: [l0, l1, l2, l3],
            remote: [r0, r1, r2, r3],
            prefix: self.prefix,
            _pad: [0; 3],
        })
    }
}

impl PeerMissKey {
    pub fn local_ip(&self) -> Option<IpAddr> {
        ip(self.family, self.local)
    }
}

/// The mask that keeps the first `prefix` bits of an address of
/// `width` bits (32 or 128), in network byte order, as the kernel applies
/// it to the bytes of the remote address.
pub fn prefix_mask(prefix: u8, width: u8) -> [u8; 16] {
    let prefix = prefix.min(width);
    let bits = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    };
    bits.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_prefix_bits() {
        // (prefix, width, the first bytes of the mask)
        let cases: [(u8, u8, &[u8]); 6] = [
            (32, 32, &[0xff, 0xff, 0xff, 0xff, 0]),
            (24, 32, &[0xff, 0xff, 0xff, 0, 0]),
            (0, 32, &[0, 0, 0, 0, 0]),
            (64, 128, &[0xff; 8]),
            (
                60,
                128,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0],
            ),
            (200, 32, &[0xff, 0xff, 0xff, 0xff, 0]),
        ];
        for (prefix, width, start) in cases {
            let mask = prefix_mask(prefix, width);
            assert_eq!(&mask[..start.len()], start, "/{prefix} of {width}");
        }
        assert_eq!(prefix_mask(128, 128), [0xff; 16]);
    }

    #[test]
    fn addresses_round_trip() {
        let key = PeerKey::ipv4(2, [10, 0, 0, 5], [203, 0, 113, 7], 32);
        assert_eq!(key.local_ip(), Some("10.0.0.5".parse().unwrap()));
        assert_eq!(key.remote_ip(), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(key.missed().local_ip(), key.local_ip());
        let mut bad = key;
        bad.family = 9;
        assert_eq!(bad.remote_ip(), None);
    }

    #[test]
    fn ipv4_keys_narrow_and_widen_back() {
        let key = PeerKey::ipv4(2, [10, 0, 0, 5], [203, 0, 113, 0], 24);
        let narrow = key.narrow().unwrap();
        assert_eq!(narrow.widen(), key);
        assert_eq!(narrow.missed(), key.missed());
        let v6 = PeerKey::ipv6(2, [1; 16], [2; 16], 64);
        assert_eq!(v6.narrow(), None);
    }
}
