//! Bounds-checked header reads, one implementation per hook.
//!
//! The parser only ever asks "give me a `T` at byte `offset` of the frame";
//! every offset check lives here so the verifier sees it once per read.

use core::mem::size_of;

use aya_ebpf::programs::{TcContext, XdpContext, sk_buff::SkBuff};

/// A frame seen by a hook, starting at its Ethernet header.
pub trait Frame {
    /// Bytes of the whole frame, from the Ethernet header on.
    fn len(&self) -> u32;
    /// A copy of the `T` at `offset`, or `None` past the end of the frame.
    fn read<T: Copy>(&self, offset: usize) -> Option<T>;
    /// The `N` 32-bit words at `offset` as they lie in memory (so each
    /// one's `to_ne_bytes` are its wire bytes), or `None` past the end of
    /// the frame. For addresses: one load per word where [`Frame::read`]
    /// takes one per byte, into word-aligned values that are copied on as
    /// words.
    fn words<const N: usize>(&self, offset: usize) -> Option<[u32; N]>;
    /// `(gso_size, gso_segs)`; `gso_size == 0` for anything but an aggregate.
    fn gso(&self) -> (u32, u32);
    /// The interface the frame is crossing.
    fn ifindex(&self) -> u32;
    /// Wire bytes of the frame: [`Frame::len`] plus a VLAN tag the driver
    /// moved out of the data (TC sees accelerated tags in skb metadata).
    fn wire_len(&self) -> u32;
}

#[inline(always)]
fn direct<T: Copy>(start: usize, end: usize, offset: usize) -> Option<T> {
    let at = start + offset;
    if at + size_of::<T>() > end {
        return None;
    }
    // SAFETY: the range was checked against data_end just above; packet
    // memory carries no alignment guarantee, hence the unaligned read.
    Some(unsafe { core::ptr::read_unaligned(at as *const T) })
}

/// 32-bit loads from packet memory. LLVM's BPF backend splits an unaligned
/// load into bytes, and an address sits 2 bytes off a word after the
/// Ethernet header; the kernel allows unaligned packet loads on hosts with
/// efficient unaligned access (x86_64, arm64), so the load is written out.
#[inline(always)]
fn direct_words<const N: usize>(start: usize, end: usize, offset: usize) -> Option<[u32; N]> {
    let at = start + offset;
    if at + 4 * N > end {
        return None;
    }
    let mut words = [0; N];
    for (i, word) in words.iter_mut().enumerate() {
        let loaded: u64;
        // SAFETY: a 4-byte load inside the range checked just above.
        unsafe {
            core::arch::asm!(
                "{v} = *(u32 *)({p} + 0)",
                p = in(reg) at + 4 * i,
                v = lateout(reg) loaded,
                options(readonly, nostack, preserves_flags),
            );
        }
        *word = loaded as u32;
    }
    Some(words)
}

/// A hook whose packet is an `__sk_buff` (TC, cgroup_skb): one reading
/// of it serves both, and each hook says only what its data leaves out.
pub trait SkbHook {
    fn skb(&self) -> &SkBuff;
    /// Wire bytes outside the data, such as a VLAN tag in skb metadata.
    fn outside_data(&self) -> u32;
}

impl<H: SkbHook> Frame for H {
    #[inline(always)]
    fn len(&self) -> u32 {
        self.skb().len()
    }

    #[inline(always)]
    fn read<T: Copy>(&self, offset: usize) -> Option<T> {
        // Headers are almost always in the linear part; an skb whose headers
        // sit in paged fragments is read through the (slower) helper.
        let (start, end) = bounds(self.skb());
        direct(start, end, offset).or_else(|| self.skb().load(offset).ok())
    }

    #[inline(always)]
    fn words<const N: usize>(&self, offset: usize) -> Option<[u32; N]> {
        let (start, end) = bounds(self.skb());
        direct_words(start, end, offset).or_else(|| self.skb().load(offset).ok())
    }

    #[inline(always)]
    fn gso(&self) -> (u32, u32) {
        // SAFETY: the context pointer is valid for the program's lifetime.
        unsafe { ((*self.skb().skb).gso_size, (*self.skb().skb).gso_segs) }
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: as above.
        unsafe { (*self.skb().skb).ifindex }
    }

    #[inline(always)]
    fn wire_len(&self) -> u32 {
        self.len() + self.outside_data()
    }
}

/// `data` and `data_end` of the skb's linear part.
#[inline(always)]
fn bounds(skb: &SkBuff) -> (usize, usize) {
    // SAFETY: the context pointer is valid for the program's lifetime.
    unsafe { ((*skb.skb).data as usize, (*skb.skb).data_end as usize) }
}

impl SkbHook for TcContext {
    #[inline(always)]
    fn skb(&self) -> &SkBuff {
        &self.skb
    }

    #[inline(always)]
    fn outside_data(&self) -> u32 {
        // SAFETY: as above.
        let tagged = unsafe { (*self.skb.skb).vlan_present } != 0;
        if tagged { 4 } else { 0 }
    }
}

impl Frame for XdpContext {
    #[inline(always)]
    fn len(&self) -> u32 {
        (self.data_end() - self.data()) as u32
    }

    #[inline(always)]
    fn read<T: Copy>(&self, offset: usize) -> Option<T> {
        direct(self.data(), self.data_end(), offset)
    }

    #[inline(always)]
    fn words<const N: usize>(&self, offset: usize) -> Option<[u32; N]> {
        direct_words(self.data(), self.data_end(), offset)
    }

    #[inline(always)]
    fn gso(&self) -> (u32, u32) {
        // XDP runs before GRO: every frame is one wire packet.
        (0, 0)
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ingress_ifindex() as u32
    }

    #[inline(always)]
    fn wire_len(&self) -> u32 {
        // XDP sees the frame as it came off the wire, tags included.
        self.len()
    }
}
