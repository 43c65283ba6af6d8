//! Ethernet, VLAN, IPv4 and IPv6 parsing down to the counted address.

use common::{
    Counters, Direction,
    wire::{ip_len, wire_count},
};

use crate::frame::Frame;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// Tags parsed before giving up: a QinQ stack is two deep.
const MAX_VLAN_TAGS: usize = 2;
const IPV6_HLEN: u32 = 40;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const UDP_HLEN: u32 = 8;

/// Where a frame is counted.
pub enum Seen {
    /// An IP packet, keyed by its local address (the first), from or to
    /// the remote one (the second): their words as they lay in the frame
    /// (see [`Frame::words`]).
    V4(u32, u32, Counters),
    V6([u32; 4], [u32; 4], Counters),
    /// Not a well-formed IPv4/IPv6 packet: counted by frame length.
    NonIp,
}

/// The IPv4 header up to the protocol; the addresses are read as words.
#[repr(C)]
#[derive(Clone, Copy)]
struct Ipv4Hdr {
    version_ihl: u8,
    tos: u8,
    tot_len: [u8; 2],
    id: [u8; 2],
    frag_off: [u8; 2],
    ttl: u8,
    protocol: u8,
}
const IPV4_SADDR: usize = 12;

/// The IPv6 header up to the next header; the addresses are read as words.
#[repr(C)]
#[derive(Clone, Copy)]
struct Ipv6Hdr {
    version_flow: [u8; 4],
    payload_len: [u8; 2],
    next_header: u8,
}
const IPV6_SADDR: usize = 8;

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Classifies a frame: ingress counts the destination, egress the source.
#[inline(always)]
pub fn classify<F: Frame>(frame: &F, dir: Direction) -> Seen {
    let Some(mut proto) = frame.read::<[u8; 2]>(12).map(be16) else {
        return Seen::NonIp;
    };
    let mut l3 = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let Some(inner) = frame.read::<[u8; 2]>(l3 + 2).map(be16) else {
            return Seen::NonIp;
        };
        proto = inner;
        l3 += VLAN_HLEN;
    }
    let available = frame.len().saturating_sub(l3 as u32);
    match proto {
        ETH_P_IP => ipv4(frame, l3, available, dir),
        ETH_P_IPV6 => ipv6(frame, l3, available, dir),
        // Including a third VLAN tag: deeper stacks are not parsed.
        _ => Seen::NonIp,
    }
}

/// Classifies a packet that starts at its IP header, as cgroup_skb
/// programs see it, by the version in its first byte.
#[inline(always)]
pub fn classify_ip<F: Frame>(frame: &F, dir: Direction) -> Seen {
    // Two bytes for the reason given in `seg_l4_len`.
    match frame.read::<[u8; 2]>(0).map(|[b, _]| b >> 4) {
        Some(4) => ipv4(frame, 0, frame.len(), dir),
        Some(6) => ipv6(frame, 0, frame.len(), dir),
        _ => Seen::NonIp,
    }
}

#[inline(always)]
fn ipv4<F: Frame>(frame: &F, l3: usize, available: u32, dir: Direction) -> Seen {
    let Some(h) = frame.read::<Ipv4Hdr>(l3) else {
        return Seen::NonIp;
    };
    let hdr_len = u32::from(h.version_ihl & 0x0f) * 4;
    let tot_len = u32::from(be16(h.tot_len));
    let (gso_size, gso_segs) = frame.gso();
    let is_gso = gso_size != 0;
    // A bad version or IHL, or a total length shorter than the header, is
    // what ip_rcv drops as malformed; a GSO aggregate may carry length 0.
    if h.version_ihl >> 4 != 4
        || hdr_len < 20
        || hdr_len > available
        || (!is_gso && tot_len < hdr_len)
    {
        return Seen::NonIp;
    }
    let len = ip_len(tot_len, available, is_gso);
    // Source and destination are adjacent: one bounds check for both.
    let Some([saddr, daddr]) = frame.words::<2>(l3 + IPV4_SADDR) else {
        return Seen::NonIp;
    };
    let l4 = l3 + hdr_len as usize;
    let wire = wire(frame, len, l4, hdr_len, h.protocol, (gso_size, gso_segs));
    let (local, remote) = pick(dir, (saddr, daddr), (daddr, saddr));
    Seen::V4(local, remote, wire)
}

#[inline(always)]
fn ipv6<F: Frame>(frame: &F, l3: usize, available: u32, dir: Direction) -> Seen {
    let Some(h) = frame.read::<Ipv6Hdr>(l3) else {
        return Seen::NonIp;
    };
    // The whole fixed header must be there.
    if h.version_flow[0] >> 4 != 6 || available < IPV6_HLEN {
        return Seen::NonIp;
    }
    let Some(words) = frame.words::<8>(l3 + IPV6_SADDR) else {
        return Seen::NonIp;
    };
    let (gso_size, gso_segs) = frame.gso();
    let is_gso = gso_size != 0;
    let len = ip_len(
        IPV6_HLEN + u32::from(be16(h.payload_len)),
        available,
        is_gso,
    );
    // Extension headers are not walked: behind one, only the fixed header
    // is taken as repeated per segment.
    let l4 = l3 + IPV6_HLEN as usize;
    let wire = wire(
        frame,
        len,
        l4,
        IPV6_HLEN,
        h.next_header,
        (gso_size, gso_segs),
    );
    let saddr = [words[0], words[1], words[2], words[3]];
    let daddr = [words[4], words[5], words[6], words[7]];
    let (local, remote) = pick(dir, (saddr, daddr), (daddr, saddr));
    Seen::V6(local, remote, wire)
}

/// Ingress counts the destination, egress the source.
#[inline(always)]
fn pick<T>(dir: Direction, saddr: T, daddr: T) -> T {
    match dir {
        Direction::Rx => daddr,
        Direction::Tx => saddr,
    }
}

/// The wire packets and bytes of one IP packet of `len` bytes. Only an
/// aggregate needs its transport header, read at `l4`.
#[inline(always)]
fn wire<F: Frame>(
    frame: &F,
    len: u32,
    l4: usize,
    ip_hdr_len: u32,
    protocol: u8,
    (gso_size, gso_segs): (u32, u32),
) -> Counters {
    if gso_size == 0 {
        return Counters::new(1, u64::from(len));
    }
    let seg_hdr_len = ip_hdr_len + seg_l4_len(frame, l4, protocol);
    wire_count(len, seg_hdr_len, gso_size, gso_segs)
}

/// Transport header bytes each segment of an aggregate repeats.
#[inline(always)]
fn seg_l4_len<F: Frame>(frame: &F, l4: usize, protocol: u8) -> u32 {
    match protocol {
        // Two bytes, not one: LLVM turns a one-byte bounds check into a
        // form the verifier cannot follow for a variable offset. The data
        // offset is the high nibble of the first.
        IPPROTO_TCP => frame
            .read::<[u8; 2]>(l4 + 12)
            .map_or(0, |[doff, _]| u32::from(doff >> 4) * 4),
        IPPROTO_UDP => UDP_HLEN,
        _ => 0,
    }
}
