//! Programs for `cargo xtask bench` only; the daemon never loads them.
//!
//! `BPF_PROG_TEST_RUN` runs a program many times on one frame, so it
//! measures a single hot key. To spread the runs over N keys, the keyed
//! programs count the frame exactly as the real ones do and then rewrite
//! its destination address to the next of N: the next run sees the next
//! key. The rewrite alone is a program of its own, whose cost is
//! subtracted, and the empty programs give the floor of the hook itself.
//!
//! The key set is described by the frame: the low 16 bits of the
//! destination address step through `0..=mask`, where `mask` is the IPv4
//! identification field or the low 16 bits of the IPv6 flow label
//! (neither of which the counting program reads). N is a power of two.

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{cgroup_skb, classifier, xdp},
    programs::{SkBuffContext, TcContext, XdpContext},
};
use common::Direction;

use crate::count;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
/// Bytes up to the end of the IPv6 destination address, the deepest
/// field the rewrite touches.
const REKEY_SPAN: usize = ETH_HLEN + 40;

// The names match `common::names::BENCH_*`.

#[classifier]
pub fn bench_empty_tc(_ctx: TcContext) -> i32 {
    TC_ACT_UNSPEC
}

#[xdp]
pub fn bench_empty_xdp(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[cgroup_skb]
pub fn bench_empty_cgroup(_ctx: SkBuffContext) -> i32 {
    1
}

#[classifier]
pub fn bench_rekey_tc(ctx: TcContext) -> i32 {
    next_key(ctx.data(), ctx.data_end());
    TC_ACT_UNSPEC
}

#[xdp]
pub fn bench_rekey_xdp(ctx: XdpContext) -> u32 {
    next_key(ctx.data(), ctx.data_end());
    XDP_PASS
}

#[classifier]
pub fn bench_keyed_tc(ctx: TcContext) -> i32 {
    count::frame(&ctx, Direction::Rx);
    next_key(ctx.data(), ctx.data_end());
    TC_ACT_UNSPEC
}

#[xdp]
pub fn bench_keyed_xdp(ctx: XdpContext) -> u32 {
    count::frame(&ctx, Direction::Rx);
    next_key(ctx.data(), ctx.data_end());
    XDP_PASS
}

/// Steps the low 16 bits of the destination address of the untagged
/// Ethernet frame at `start..end` to the next key, wrapping at the mask.
#[inline(always)]
fn next_key(start: usize, end: usize) {
    // One check covers every access below, for either family.
    if start + REKEY_SPAN > end {
        return;
    }
    // SAFETY: every read and write below is at an offset under REKEY_SPAN,
    // within the frame checked just above; packet memory is unaligned.
    unsafe {
        let at = |offset: usize| (start + offset) as *mut [u8; 2];
        let (mask_at, low_at) = match u16::from_be_bytes(at(12).read_unaligned()) {
            // IPv4: identification; low half of the destination address.
            ETH_P_IP => (ETH_HLEN + 4, ETH_HLEN + 18),
            // IPv6: low half of the flow label; of the destination address.
            ETH_P_IPV6 => (ETH_HLEN + 2, ETH_HLEN + 38),
            _ => return,
        };
        let mask = u16::from_be_bytes(at(mask_at).read_unaligned());
        let low = u16::from_be_bytes(at(low_at).read_unaligned());
        let next = low.wrapping_add(1) & mask;
        at(low_at).write_unaligned(next.to_be_bytes());
    }
}
