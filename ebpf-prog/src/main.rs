//! aliasstat's kernel side: per-address packet and byte counters on TC
//! (ingress and egress) and XDP (ingress), and per-service ones on the
//! cgroup v2 root (`services`).
//!
//! Every program only reads the frame and always lets it continue, so it
//! never changes a packet's fate.
#![no_std]
#![no_main]
// 32-bit packet loads (`frame.rs`), as aya-ebpf itself does for its
// bounds checks.
#![cfg_attr(
    target_arch = "bpf",
    expect(unstable_features, reason = "asm on the BPF target is unstable"),
    feature(asm_experimental_arch)
)]
// `atomic_xadd`: the BPF target's atomic add (see peers.rs).
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod bench;
mod count;
mod frame;
mod parse;
mod peers;
mod services;

use aya_ebpf::{
    bindings::{TC_ACT_UNSPEC, xdp_action::XDP_PASS},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use common::Direction;

// The function names are the program names user space looks up
// (`common::names::{TC_INGRESS, TC_EGRESS, XDP_INGRESS}`).

#[classifier]
pub fn aliasstat_tc_ingress(ctx: TcContext) -> i32 {
    count::frame(&ctx, Direction::Rx);
    // "next": let the rest of the tcx chain, and the stack, decide.
    TC_ACT_UNSPEC
}

#[classifier]
pub fn aliasstat_tc_egress(ctx: TcContext) -> i32 {
    count::frame(&ctx, Direction::Tx);
    TC_ACT_UNSPEC
}

#[xdp]
pub fn aliasstat_xdp_ingress(ctx: XdpContext) -> u32 {
    count::frame(&ctx, Direction::Rx);
    XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
