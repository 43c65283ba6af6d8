//! Frames built byte by byte, for AF_PACKET injection and for
//! `BPF_PROG_TEST_RUN`.

use std::net::{IpAddr, Ipv4Addr};

use crate::Mac;

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_LLDP: u16 = 0x88cc;
pub const BROADCAST: Mac = [0xff; 6];
/// Nearest-bridge address that LLDP is sent to.
pub const LLDP_MULTICAST: Mac = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
pub const IPV4_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const UDP_HLEN: usize = 8;
/// Length of an ARP request or reply for IPv4 over Ethernet, frame included.
pub const ARP_FRAME_LEN: usize = ETH_HLEN + 28;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A broadcast "who has `target`" from `sender`.
pub fn arp_request(sender_mac: Mac, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut arp = Vec::with_capacity(28);
    arp.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    arp.extend_from_slice(&ETH_P_IP.to_be_bytes());
    arp.extend_from_slice(&[6, 4]);
    arp.extend_from_slice(&1u16.to_be_bytes()); // request
    arp.extend_from_slice(&sender_mac);
    arp.extend_from_slice(&sender.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&target.octets());
    ethernet(BROADCAST, sender_mac, ETH_P_ARP, &arp)
}

/// An LLDP-ethertype frame of exactly `frame_len` bytes. Its body is filler:
/// only the ethertype and the length matter to a byte counter.
pub fn lldp(src: Mac, frame_len: usize) -> Vec<u8> {
    assert!(frame_len >= ETH_HLEN, "a frame holds at least its header");
    ethernet(
        LLDP_MULTICAST,
        src,
        ETH_P_LLDP,
        &vec![0; frame_len - ETH_HLEN],
    )
}

/// The transport header of an [`ip_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// A TCP header of `header_len` bytes (20 to 60, a multiple of 4); the
    /// options are NOPs, since only the data offset matters here.
    Tcp {
        header_len: usize,
    },
    Udp,
}

impl L4 {
    pub const fn header_len(self) -> usize {
        match self {
            Self::Tcp { header_len } => header_len,
            Self::Udp => UDP_HLEN,
        }
    }
}

/// The IP header length of `addr`'s family.
pub const fn ip_header_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => IPV4_HLEN,
        IpAddr::V6(_) => IPV6_HLEN,
    }
}

/// An Ethernet frame holding one IP packet from `src` to `dst` with an
/// `l4` header and `payload_len` payload bytes. Both addresses must be of
/// one family.
pub fn ip_frame(
    src_mac: Mac,
    dst_mac: Mac,
    src: IpAddr,
    dst: IpAddr,
    l4: L4,
    payload_len: usize,
) -> Vec<u8> {
    let l4_len = l4.header_len() + payload_len;
    let (protocol, mut transport) = match l4 {
        L4::Tcp { header_len } => (IPPROTO_TCP, tcp_header(header_len)),
        L4::Udp => (IPPROTO_UDP, udp_header(l4_len)),
    };
    transport.resize(l4_len, 0xa5);

    let (ethertype, mut packet) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (ETH_P_IP, ipv4_header(s, d, protocol, l4_len)),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = Vec::with_capacity(IPV6_HLEN + l4_len);
            h.extend_from_slice(&[0x60, 0, 0, 0]);
            h.extend_from_slice(
                &u16::try_from(l4_len)
                    .expect("fits a jumbo-less IPv6 packet")
                    .to_be_bytes(),
            );
            h.push(protocol);
            h.push(64);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            (ETH_P_IPV6, h)
        }
        _ => panic!("{src} and {dst} are of different families"),
    };
    packet.extend_from_slice(&transport);
    ethernet(dst_mac, src_mac, ethertype, &packet)
}

fn tcp_header(header_len: usize) -> Vec<u8> {
    assert!(
        (20..=60).contains(&header_len) && header_len.is_multiple_of(4),
        "bad TCP header length {header_len}"
    );
    let mut h = Vec::with_capacity(header_len);
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&5201u16.to_be_bytes());
    h.extend_from_slice(&1u32.to_be_bytes()); // seq
    h.extend_from_slice(&1u32.to_be_bytes()); // ack
    h.push(((header_len / 4) as u8) << 4);
    h.push(0x10); // ACK
    h.extend_from_slice(&65535u16.to_be_bytes()); // window
    h.extend_from_slice(&[0; 4]); // checksum, urgent pointer
    h.resize(header_len, 1); // NOP options
    h
}

/// A UDP header for a datagram of `udp_len` bytes; a GSO aggregate larger
/// than 64 KiB carries length 0, as the kernel's do.
fn udp_header(udp_len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(UDP_HLEN);
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&5201u16.to_be_bytes());
    h.extend_from_slice(&u16::try_from(udp_len).unwrap_or(0).to_be_bytes());
    h.extend_from_slice(&[0; 2]); // no checksum
    h
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: usize) -> Vec<u8> {
    let total = u16::try_from(IPV4_HLEN + l4_len).expect("fits an IPv4 packet");
    let mut h = Vec::with_capacity(IPV4_HLEN + l4_len);
    h.push(0x45);
    h.push(0);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0]); // id, DF
    h.push(64);
    h.push(protocol);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !((folded & 0xffff) + (folded >> 16)) as u16;
    h[10..12].copy_from_slice(&checksum.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mac = [2, 0, 0, 0, 0, 1];
    const B: Mac = [2, 0, 0, 0, 0, 2];

    #[test]
    fn arp_request_layout() {
        let f = arp_request(A, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(f.len(), ARP_FRAME_LEN);
        assert_eq!(&f[..6], &BROADCAST);
        assert_eq!(&f[12..14], &ETH_P_ARP.to_be_bytes());
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[38..42], &[10, 0, 0, 9]);
    }

    #[test]
    fn lldp_has_the_asked_length() {
        for len in [14, 60, 300] {
            let f = lldp(A, len);
            assert_eq!(f.len(), len);
            assert_eq!(&f[12..14], &ETH_P_LLDP.to_be_bytes());
        }
    }

    #[test]
    fn ip_frames_have_consistent_lengths() {
        // (src, dst, l4, payload, ethertype, IP-layer length)
        let v4s: IpAddr = "10.0.0.1".parse().unwrap();
        let v4d: IpAddr = "10.0.0.2".parse().unwrap();
        let v6s: IpAddr = "fd00::1".parse().unwrap();
        let v6d: IpAddr = "fd00::2".parse().unwrap();
        let tcp32 = L4::Tcp { header_len: 32 };
        let cases = [
            (v4s, v4d, tcp32, 1000, ETH_P_IP, 20 + 32 + 1000),
            (v4s, v4d, L4::Udp, 0, ETH_P_IP, 28),
            (v6s, v6d, tcp32, 10, ETH_P_IPV6, 40 + 32 + 10),
            (v6s, v6d, L4::Udp, 3000, ETH_P_IPV6, 40 + 8 + 3000),
        ];
        for (src, dst, l4, payload, ethertype, ip_len) in cases {
            let f = ip_frame(A, B, src, dst, l4, payload);
            assert_eq!(f.len(), ETH_HLEN + ip_len, "{l4:?} {payload}");
            assert_eq!(&f[12..14], &ethertype.to_be_bytes());
            let l3 = &f[ETH_HLEN..];
            let l4_at = match ethertype {
                ETH_P_IP => {
                    assert_eq!(usize::from(u16::from_be_bytes([l3[2], l3[3]])), ip_len);
                    20
                }
                _ => {
                    assert_eq!(usize::from(u16::from_be_bytes([l3[4], l3[5]])), ip_len - 40);
                    40
                }
            };
            if let L4::Tcp { header_len } = l4 {
                assert_eq!(usize::from(l3[l4_at + 12] >> 4) * 4, header_len);
            }
        }
    }

    #[test]
    fn ipv4_checksum_verifies() {
        let f = ip_frame(
            A,
            B,
            "10.1.2.3".parse().unwrap(),
            "10.3.2.1".parse().unwrap(),
            L4::Udp,
            5,
        );
        let h = &f[ETH_HLEN..ETH_HLEN + IPV4_HLEN];
        let sum: u32 = h
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff);
    }
}
