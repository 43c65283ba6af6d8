//! Properties of the packet arithmetic that the eBPF programs run on every
//! packet: it never panics (a panic there is a verifier-rejected or looping
//! program), and its answers stay within what any skb can stand for,
//! whatever the header and GSO fields say.

use common::wire::{ip_len, wire_count};
use proptest::prelude::*;

/// Sizes around the interesting edges (0, small, MTU-sized, 64 KiB, BIG
/// TCP, u32::MAX), plus anything.
fn size() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..=64,
        1400u32..=1600,
        65_000u32..=66_000,
        Just(u32::MAX),
        Just(u32::MAX - 1),
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn ip_len_is_within_the_frame_and_the_claim(claimed in size(), available in size(), gso in any::<bool>()) {
        let len = ip_len(claimed, available, gso);
        // Never more than the frame holds.
        prop_assert!(len <= available);
        if gso {
            // An aggregate is counted whole: its length field may be 0.
            prop_assert_eq!(len, available);
        } else {
            // A plain packet: its claim, cut to what is there.
            prop_assert_eq!(len, claimed.min(available));
        }
    }

    #[test]
    fn wire_count_invariants(
        ip in size(),
        hdr in size(),
        gso_size in prop_oneof![Just(0u32), size()],
        gso_segs in prop_oneof![Just(0u32), size()],
    ) {
        let c = wire_count(ip, hdr, gso_size, gso_segs);
        prop_assert!(c.packets >= 1, "{c:?}");
        prop_assert!(c.bytes >= u64::from(ip), "{c:?}");
        if gso_size == 0 {
            prop_assert_eq!((c.packets, c.bytes), (1, u64::from(ip)));
        } else {
            // Every extra segment repeats the headers, nothing else.
            prop_assert_eq!(c.bytes, u64::from(ip) + (c.packets - 1) * u64::from(hdr));
            if gso_segs != 0 {
                // The kernel's count is taken as it is.
                prop_assert_eq!(c.packets, u64::from(gso_segs));
            } else {
                // Derived: enough segments of gso_size for the payload.
                let payload = u64::from(ip.saturating_sub(hdr));
                prop_assert!(c.packets * u64::from(gso_size) >= payload);
                prop_assert!(c.packets == 1 || (c.packets - 1) * u64::from(gso_size) < payload);
            }
        }
    }

    /// A real aggregate, built from its segments, counts as those segments.
    #[test]
    fn an_aggregate_counts_as_its_segments(
        hdr in 20u32..=120,
        gso_size in 1u32..=9000,
        segments in 1u32..=64,
        last in 1u32..=9000,
        tell_segs in any::<bool>(),
    ) {
        let last = last.min(gso_size);
        let payload = (segments - 1) * gso_size + last;
        let ip = hdr + payload;
        let c = wire_count(ip, hdr, gso_size, if tell_segs { segments } else { 0 });
        prop_assert_eq!(c.packets, u64::from(segments));
        prop_assert_eq!(c.bytes, u64::from(segments) * u64::from(hdr) + u64::from(payload));
    }
}
