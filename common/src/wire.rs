//! Packet arithmetic: how many wire packets and IP-layer bytes one skb
//! stands for. Kept free of kernel types so that it is unit-tested and
//! fuzzed on the host and runs unchanged in the verifier-checked program.

use crate::Counters;

/// The IP-layer length of one packet as the kernel's IP layer would see it.
///
/// `header_len` is the length the IP header claims (IPv4 total length, or
/// 40 plus the IPv6 payload length); `available` is what the frame holds
/// from the IP header on. A plain packet counts as what its header claims,
/// cut to what is there: Ethernet padding after a short packet is not IP
/// traffic, and nftables would not see it. A GSO/GRO aggregate counts as
/// everything it holds, since its length field may be zero (BIG TCP) and it
/// is never padded.
pub const fn ip_len(header_len: u32, available: u32, is_gso: bool) -> u32 {
    if is_gso || header_len > available {
        available
    } else {
        header_len
    }
}

/// The wire packets and IP-layer bytes behind one skb.
///
/// * `ip_len`: IP-layer bytes of the skb ([`ip_len`]).
/// * `seg_hdr_len`: the IP plus transport header bytes that every segment
///   repeats once the aggregate is split.
/// * `gso_size`, `gso_segs`: from the skb's shared info. `gso_size == 0`
///   means the skb is not an aggregate. A `gso_segs` of zero (untrusted
///   sources leave it for the stack to fill in) is derived from the sizes.
///
/// Every segment carries its own copy of the headers, so the aggregate's
/// bytes plus one header per extra segment is what the wire carried.
pub const fn wire_count(ip_len: u32, seg_hdr_len: u32, gso_size: u32, gso_segs: u32) -> Counters {
    if gso_size == 0 {
        return Counters::new(1, ip_len as u64);
    }
    let segs = if gso_segs != 0 {
        gso_segs as u64
    } else {
        let payload = ip_len.saturating_sub(seg_hdr_len) as u64;
        let derived = payload.div_ceil(gso_size as u64);
        if derived == 0 { 1 } else { derived }
    };
    Counters::new(segs, ip_len as u64 + (segs - 1) * seg_hdr_len as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_len_cases() {
        // (claimed, available, gso, expected)
        let cases = [
            (100, 100, false, 100),
            (28, 46, false, 28),     // padded minimum frame
            (1500, 60, false, 60),   // truncated: only what is there
            (0, 65000, true, 65000), // BIG TCP leaves the length at zero
            (1500, 64000, true, 64000),
        ];
        for (claimed, available, gso, expected) in cases {
            assert_eq!(
                ip_len(claimed, available, gso),
                expected,
                "{claimed} {available} {gso}"
            );
        }
    }

    #[test]
    fn wire_count_cases() {
        // (ip_len, seg_hdr_len, gso_size, gso_segs, packets, bytes)
        let cases = [
            (1500, 52, 0, 0, 1, 1500),
            (1500, 52, 0, 7, 1, 1500), // gso_segs means nothing without gso_size
            // 10 TCP segments of 1448 payload bytes behind 20+32 header bytes
            (52 + 14_480, 52, 1448, 10, 10, 10 * (52 + 1448)),
            // the last segment is short: 2 full + 100 bytes
            (52 + 2 * 1448 + 100, 52, 1448, 3, 3, 3 * 52 + 2 * 1448 + 100),
            // gso_segs left at zero is derived from the sizes
            (52 + 2 * 1448 + 100, 52, 1448, 0, 3, 3 * 52 + 2 * 1448 + 100),
            // UDP GSO over IPv6: 40 + 8 header bytes, 4 datagrams of 1000
            (48 + 4000, 48, 1000, 4, 4, 4 * 1048),
            // a degenerate aggregate with no payload is still one packet
            (52, 52, 1448, 0, 1, 52),
            (10, 52, 1448, 0, 1, 10),
        ];
        for (ip, hdr, size, segs, packets, bytes) in cases {
            assert_eq!(
                wire_count(ip, hdr, size, segs),
                Counters::new(packets, bytes),
                "ip_len={ip} hdr={hdr} gso_size={size} gso_segs={segs}"
            );
        }
    }

    #[test]
    fn wire_count_never_overflows() {
        let c = wire_count(u32::MAX, u32::MAX, 1, u32::MAX);
        let max = u64::from(u32::MAX);
        assert_eq!(c.packets, max);
        assert_eq!(c.bytes, max + (max - 1) * max);
    }
}
