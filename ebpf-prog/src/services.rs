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
//! the namespace whose cookie user space set in [`SERVICE_NETNS`] before
//! loading are counted. Every program returns 1 (allow): it never changes
//! a packet's fate.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_netns_cookie, bpf_skb_cgroup_id},
    macros::{cgroup_skb, map},
    maps::PerCpuHashMap,
    programs::{SkBuffContext, sk_buff::SkBuff},
};
use common::{Addr6Key, Counters, Direction, Service4Key, Service6Key, names::SERVICE_CAPACITY};

use crate::{
    count::add,
    frame::SkbHook,
    parse::{Seen, classify_ip},
};

/// cgroup_skb's verdict that lets the packet through.
const ALLOW: i32 = 1;

// Static names match `common::names::{SERVICES_V4, SERVICES_V6}`. One map
// per family, so that an IPv4 key is 16 bytes.
#[map]
static SERVICES_V4: PerCpuHashMap<Service4Key, Counters> =
    PerCpuHashMap::with_max_entries(SERVICE_CAPACITY, 0);

#[map]
static SERVICES_V6: PerCpuHashMap<Service6Key, Counters> =
    PerCpuHashMap::with_max_entries(SERVICE_CAPACITY, 0);

// Load-time global (`common::names::SERVICE_NETNS`), in the frozen .rodata
// map: the compare is against a value the verifier knows, not a map
// lookup. 0 until user space sets it: no namespace has that cookie, so
// nothing is counted.
#[unsafe(no_mangle)]
static SERVICE_NETNS: u64 = 0;

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
    // SAFETY: the helper takes the program's own context. The global is
    // read volatile so that the compiler does not fold in its default.
    let ours =
        unsafe { bpf_get_netns_cookie(ctx.as_ptr()) == core::ptr::read_volatile(&SERVICE_NETNS) };
    if !ours {
        return;
    }
    // A full map loses the count: the cgroup keys are few (local addresses
    // times cgroups with traffic), and user space reports the fill.
    match classify_ip(ctx, dir) {
        Seen::V4(local, _, wire) => {
            let key = Service4Key::new(cgroup(ctx), device(ctx, dir), dir, local.to_ne_bytes());
            let _ = add(&SERVICES_V4, &key, wire);
        }
        Seen::V6(local, _, wire) => {
            let addr = Addr6Key::from_words(device(ctx, dir), dir, local);
            let _ = add(&SERVICES_V6, &Service6Key::new(cgroup(ctx), addr), wire);
        }
        // Asked for only once the packet is one to count.
        Seen::NonIp => {}
    }
}

/// The cgroup v2 id of the packet's socket.
#[inline(always)]
fn cgroup(ctx: &SkBuffContext) -> u64 {
    // SAFETY: the helper takes the program's own context.
    unsafe { bpf_skb_cgroup_id(ctx.skb.skb) }
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
