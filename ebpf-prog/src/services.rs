//! Per-service counting: cgroup_skb programs on the cgroup v2 root count
//! what each cgroup's sockets receive and send, per local address.
//!
//! Ingress runs when the stack hands a packet to a socket (the socket
//! filter point, after the socket lookup), so what it counts is delivered;
//! egress runs in ip_finish_output, before GSO splits an aggregate. Both
//! see the packet from its IP header and count it with the parser and the
//! wire arithmetic of the address counters, so the two agree segment for
//! segment.
//!
//! A cgroup program runs for every network namespace; only the packets of
//! the namespace whose cookie user space wrote into [`SERVICE_NETNS`] are
//! counted. Every program returns 1 (allow): it never changes a packet's
//! fate.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_netns_cookie, bpf_skb_cgroup_id},
    macros::{cgroup_skb, map},
    maps::{Array, PerCpuHashMap},
    programs::{SkBuffContext, sk_buff::SkBuff},
};
use common::{Counters, Direction, Family, ServiceKey, names::SERVICE_CAPACITY};

use crate::{
    count::add,
    frame::{SkbHook, ipv6_bytes},
    parse::{Seen, classify_ip},
};

/// cgroup_skb's verdict that lets the packet through.
const ALLOW: i32 = 1;

// Static names match `common::names::{SERVICES, SERVICE_NETNS}`.
#[map]
static SERVICES: PerCpuHashMap<ServiceKey, Counters> =
    PerCpuHashMap::with_max_entries(SERVICE_CAPACITY, 0);

#[map]
static SERVICE_NETNS: Array<u64> = Array::with_max_entries(1, 0);

// The function names are the program names user space looks up
// (`common::names::{CGROUP_INGRESS, CGROUP_EGRESS}`).

#[cgroup_skb]
pub fn aliasstat_cgroup_ingress(ctx: SkBuffContext) -> i32 {
    count(&ctx, Direction::Rx);
    ALLOW
}

#[cgroup_skb]
pub fn aliasstat_cgroup_egress(ctx: SkBuffContext) -> i32 {
    count(&ctx, Direction::Tx);
    ALLOW
}

/// Counts one packet for its socket's cgroup, if it is in our namespace.
#[inline(always)]
pub fn count(ctx: &SkBuffContext, dir: Direction) {
    // SAFETY: the helpers take the program's own context.
    let (netns, cgroup) = unsafe {
        (
            bpf_get_netns_cookie(ctx.as_ptr()),
            bpf_skb_cgroup_id(ctx.skb.skb),
        )
    };
    // Zero until user space has written it: count nothing until then.
    if SERVICE_NETNS.get(0).is_none_or(|ours| *ours != netns) {
        return;
    }
    let (family, addr, wire) = match classify_ip(ctx, dir) {
        Seen::V4(local, _, wire) => {
            let mut addr = [0; 16];
            addr[..4].copy_from_slice(&local.to_ne_bytes());
            (Family::Ipv4, addr, wire)
        }
        Seen::V6(local, _, wire) => (Family::Ipv6, ipv6_bytes(local), wire),
        Seen::NonIp => return,
    };
    let key = ServiceKey::new(cgroup, device(ctx, dir), dir, family, addr);
    // A full map loses the count: the cgroup keys are few (local addresses
    // times cgroups with traffic), and user space reports the fill.
    let _ = add(&SERVICES, &key, wire);
}

/// The interface the address counters see the packet on: where it came in
/// (the stack may have moved `ifindex` to a VRF by now), or where it goes.
#[inline(always)]
fn device(ctx: &SkBuffContext, dir: Direction) -> u32 {
    // SAFETY: the context pointer is valid for the program's lifetime.
    unsafe {
        match dir {
            Direction::Rx => (*ctx.skb.skb).ingress_ifindex,
            Direction::Tx => (*ctx.skb.skb).ifindex,
        }
    }
}

/// A cgroup_skb packet, from its IP header on: all of it is data.
impl SkbHook for SkBuffContext {
    #[inline(always)]
    fn skb(&self) -> &SkBuff {
        &self.skb
    }

    #[inline(always)]
    fn outside_data(&self) -> u32 {
        0
    }
}
