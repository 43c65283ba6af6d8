//! Random, truncated and malformed frames through the loaded programs with
//! BPF_PROG_TEST_RUN: whatever arrives, the verdict lets it through
//! unchanged, and every frame is counted in exactly one bucket, the one a
//! model of the parser built here predicts.
//!
//! Frames are made by a seeded generator (`ALIASSTAT_FUZZ_SEED` replays a
//! run). Most kinds are built with their bucket known by construction (bad
//! IHL is non_ip, a padded IPv4 packet counts its total length); those
//! also check the model, which then predicts the random ones.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aliasstat::bpf::{
    counters::{CounterSource as _, PinnedMaps},
    load,
};
use anyhow::{Context, Result, bail, ensure};
use aya::{
    Ebpf,
    programs::{
        ProgramError, ProgramType, SchedClassifier, TestRun, TestRunOptions, TestRunResult, Xdp,
    },
    sys::is_program_supported,
};
use common::{
    Direction, OtherKind,
    names::{DEFAULT_ADDRESS_CAPACITY, TC_EGRESS, TC_INGRESS, XDP_INGRESS},
};
use lab::{BpfDir, Count};

use crate::{Outcome, check_eq};

/// Frames per program. The kernel refuses some (see [`refusable`]): about
/// 6% for XDP and 13% for TC, which leaves over 100,000 that run.
const FRAMES: usize = 125_000;
/// Every this many frames, one is checked on its own: the snapshot before
/// and after it differs in exactly the predicted bucket.
const SAMPLE_EVERY: usize = 499;
/// `TC_ACT_UNSPEC` (-1) as the u32 BPF_PROG_TEST_RUN returns.
const TC_ACT_UNSPEC: u32 = u32::MAX;
const XDP_PASS: u32 = 2;
/// BPF_PROG_TEST_RUN hands the program the caller's loopback.
const LOOPBACK_IFINDEX: u32 = 1;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const ETH_HLEN: usize = 14;

pub fn tc() -> Result<Outcome> {
    if !is_program_supported(ProgramType::SchedClassifier)? {
        return Ok(Outcome::Skipped(
            "the kernel does not load TC classifiers".into(),
        ));
    }
    for (program, direction, seed) in [
        (TC_INGRESS, Direction::Rx, 0x7c1),
        (TC_EGRESS, Direction::Tx, 0x7c2),
    ] {
        let pins = BpfDir::new("fuzz")?;
        let mut ebpf = load::load(pins.path(), DEFAULT_ADDRESS_CAPACITY)?;
        let prog: &mut SchedClassifier = load::program(&mut ebpf, program)?;
        fuzz(program, direction, seed, TC_ACT_UNSPEC, &pins, |data| {
            run(prog, data)
        })?;
        drop(ebpf);
    }
    Ok(Outcome::Passed)
}

pub fn xdp() -> Result<Outcome> {
    if !is_program_supported(ProgramType::Xdp)? {
        return Ok(Outcome::Skipped(
            "the kernel does not load XDP programs".into(),
        ));
    }
    let pins = BpfDir::new("fuzz")?;
    let mut ebpf: Ebpf = load::load(pins.path(), DEFAULT_ADDRESS_CAPACITY)?;
    let prog: &mut Xdp = load::program(&mut ebpf, XDP_INGRESS)?;
    fuzz(XDP_INGRESS, Direction::Rx, 0x8d1, XDP_PASS, &pins, |data| {
        run(prog, data)
    })?;
    Ok(Outcome::Passed)
}

/// One BPF_PROG_TEST_RUN of `data` (`repeat: 1`: each frame once).
fn run<P>(prog: &P, data: &[u8]) -> Result<u32, ProgramError>
where
    for<'a> P: TestRun<Result = TestRunResult, Opts<'a> = TestRunOptions<'a>>,
{
    let result = prog.test_run(TestRunOptions {
        data_in: Some(data),
        repeat: 1,
        ..TestRunOptions::default()
    })?;
    Ok(result.return_value)
}

/// Where a frame is counted: an address (with the IP-layer bytes counted
/// for it) or non_ip (with the frame's bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bucket {
    Addr(IpAddr, u64),
    NonIp(u64),
}

/// What a generator knows about its frame.
#[derive(Clone, Copy, Debug)]
enum Known {
    /// The bucket, by construction.
    Is(Bucket),
    /// Random content: the model decides.
    Model,
}

fn fuzz(
    program: &str,
    direction: Direction,
    default_seed: u64,
    pass: u32,
    pins: &BpfDir,
    mut run: impl FnMut(&[u8]) -> Result<u32, ProgramError>,
) -> Result<()> {
    let seed = match std::env::var("ALIASSTAT_FUZZ_SEED") {
        Ok(s) => s.parse().context("ALIASSTAT_FUZZ_SEED is not a number")?,
        Err(_) => default_seed,
    };
    let mut rng = Rng(seed);
    let mut expected_addr: BTreeMap<IpAddr, Count> = BTreeMap::new();
    let mut expected_non_ip = Count::default();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut refused: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut ran, mut sampled) = (0u64, 0u64);
    for i in 0..FRAMES {
        let (kind, frame, known) = generate(&mut rng, direction);
        let predicted = model(&frame, direction);
        if let Known::Is(bucket) = known {
            ensure!(
                predicted == bucket,
                "the model disagrees with the construction of a `{kind}` frame: \
                 model {predicted:?}, built as {bucket:?}; frame {frame:02x?}"
            );
        }
        let sample = i % SAMPLE_EVERY == 0;
        let before = if sample {
            Some(counts(pins, direction)?)
        } else {
            None
        };
        match run(&frame) {
            Ok(verdict) => ensure!(
                verdict == pass,
                "{program} returned {verdict} for a `{kind}` frame (expected {pass}): {frame:02x?}"
            ),
            Err(ProgramError::SyscallError(e)) => {
                let errno = e.io_error.raw_os_error().unwrap_or(0);
                *refused.entry(kind).or_default() += 1;
                ensure!(
                    errno == libc::EINVAL && refusable(&frame),
                    "BPF_PROG_TEST_RUN of {program} failed on a {}-byte `{kind}` frame: {e}; \
                     frame {frame:02x?}",
                    frame.len()
                );
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("{program} on a `{kind}` frame")),
        }
        ran += 1;
        *kinds.entry(kind).or_default() += 1;
        match predicted {
            Bucket::Addr(addr, bytes) => {
                *expected_addr.entry(addr).or_default() += Count::one(bytes)
            }
            Bucket::NonIp(bytes) => expected_non_ip += Count::one(bytes),
        }
        if let Some(before) = before {
            let after = counts(pins, direction)?;
            let moved = diff(&before, &after);
            let want = match predicted {
                Bucket::Addr(addr, bytes) => vec![(Some(addr), Count::one(bytes))],
                Bucket::NonIp(bytes) => vec![(None, Count::one(bytes))],
            };
            check_eq(
                &format!("buckets changed by one `{kind}` frame {frame:02x?}"),
                &want,
                &moved,
            )?;
            sampled += 1;
        }
    }

    let got = counts(pins, direction)?;
    let total: u64 = got.addresses.values().map(|c| c.packets).sum::<u64>()
        + got.non_ip.packets
        + got.overflow.packets;
    println!(
        "  {program}: seed {seed}, {FRAMES} frames, {ran} ran; refused with EINVAL, by kind: {refused:?}"
    );
    println!("  {program}: by kind {kinds:?}");
    println!(
        "  {program}: counted {} addresses {} + non_ip {} + overflow {}; {sampled} frames checked one by one",
        got.addresses.len(),
        got.addresses.values().copied().sum::<Count>(),
        got.non_ip,
        got.overflow
    );
    ensure!(ran >= 100_000, "only {ran} frames ran");
    check_eq("packets over every bucket against frames run", &ran, &total)?;
    check_eq("overflow", &Count::default(), &got.overflow)?;
    check_eq("non_ip", &expected_non_ip, &got.non_ip)?;
    check_eq("per address", &expected_addr, &got.addresses)?;
    Ok(())
}

/// Whether BPF_PROG_TEST_RUN may refuse `frame` (EINVAL) before the
/// program sees it: anything shorter than an Ethernet header, and, for an
/// skb, an untagged IPv4 or IPv6 frame too short for the fixed IP header
/// (the kernel reads it to set up the test socket). Such frames never run,
/// so they are left out of the counts; any other refusal fails the test.
fn refusable(frame: &[u8]) -> bool {
    if frame.len() < ETH_HLEN {
        return true;
    }
    let l3 = frame.len() - ETH_HLEN;
    match u16::from_be_bytes([frame[12], frame[13]]) {
        ETH_P_IP => l3 < 20,
        ETH_P_IPV6 => l3 < 40,
        _ => false,
    }
}

/// The counters of one direction on loopback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Counts {
    addresses: BTreeMap<IpAddr, Count>,
    non_ip: Count,
    overflow: Count,
}

fn counts(pins: &BpfDir, direction: Direction) -> Result<Counts> {
    let snap = PinnedMaps::open(pins.path())?.snapshot()?;
    let mut counts = Counts::default();
    for a in &snap.addresses {
        ensure!(
            a.ifindex == LOOPBACK_IFINDEX,
            "counted on ifindex {}: {a:?}",
            a.ifindex
        );
        ensure!(
            a.direction == direction,
            "counted in the other direction: {a:?}"
        );
        *counts.addresses.entry(a.address).or_default() +=
            Count::new(a.counters.packets, a.counters.bytes);
    }
    for o in &snap.other {
        if o.counters.packets == 0 {
            continue;
        }
        ensure!(
            o.ifindex == LOOPBACK_IFINDEX && o.direction == direction,
            "unexpected bucket {o:?}"
        );
        let c = Count::new(o.counters.packets, o.counters.bytes);
        // Not a match: other kinds (those only user space writes) must
        // stay empty here, whatever kinds the map layout has.
        if o.kind == OtherKind::NonIp {
            counts.non_ip += c;
        } else if o.kind == OtherKind::Overflow {
            counts.overflow += c;
        } else {
            bail!("a frame went to the {:?} bucket: {o:?}", o.kind);
        }
    }
    Ok(counts)
}

/// What changed from `before` to `after`: (address or None for non_ip,
/// growth). Overflow counts as a change of its own (address None, bytes
/// negated would be odd), so it is reported through a distinct address.
fn diff(before: &Counts, after: &Counts) -> Vec<(Option<IpAddr>, Count)> {
    let grown = |a: Count, b: Count| Count::new(a.packets - b.packets, a.bytes - b.bytes);
    let mut moved = Vec::new();
    for (addr, &now) in &after.addresses {
        let then = before.addresses.get(addr).copied().unwrap_or_default();
        if now != then {
            moved.push((Some(*addr), grown(now, then)));
        }
    }
    if after.non_ip != before.non_ip {
        moved.push((None, grown(after.non_ip, before.non_ip)));
    }
    if after.overflow != before.overflow {
        moved.push((
            Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            grown(after.overflow, before.overflow),
        ));
    }
    moved
}

/// The parser's contract (ebpf-prog/src/parse.rs), written again from its
/// documentation: up to two VLAN tags (802.1Q or 802.1ad), then IPv4 with
/// version 4, IHL of at least 20 bytes within the frame and a total length
/// of at least the header, or IPv6 with version 6 and a whole fixed header.
/// An IP packet counts its claimed length cut to what the frame holds;
/// anything else is non_ip with the frame's length.
fn model(frame: &[u8], direction: Direction) -> Bucket {
    let non_ip = Bucket::NonIp(frame.len() as u64);
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
    };
    let Some(mut proto) = be16(12) else {
        return non_ip;
    };
    let mut l3 = ETH_HLEN;
    for _ in 0..2 {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let Some(inner) = be16(l3 + 2) else {
            return non_ip;
        };
        proto = inner;
        l3 += 4;
    }
    let available = frame.len().saturating_sub(l3) as u64;
    let cut = |claimed: u64| claimed.min(available);
    match proto {
        ETH_P_IP => {
            let Some(h) = frame.get(l3..l3 + 20) else {
                return non_ip;
            };
            let hdr_len = u64::from(h[0] & 0x0f) * 4;
            let tot_len = u64::from(u16::from_be_bytes([h[2], h[3]]));
            if h[0] >> 4 != 4 || hdr_len < 20 || hdr_len > available || tot_len < hdr_len {
                return non_ip;
            }
            let at = if direction == Direction::Rx { 16 } else { 12 };
            let addr: [u8; 4] = h[at..at + 4].try_into().expect("4 bytes");
            Bucket::Addr(IpAddr::from(addr), cut(tot_len))
        }
        ETH_P_IPV6 => {
            let Some(h) = frame.get(l3..l3 + 40) else {
                return non_ip;
            };
            if h[0] >> 4 != 6 {
                return non_ip;
            }
            let payload = u64::from(u16::from_be_bytes([h[4], h[5]]));
            let at = if direction == Direction::Rx { 24 } else { 8 };
            let addr: [u8; 16] = h[at..at + 16].try_into().expect("16 bytes");
            Bucket::Addr(IpAddr::from(addr), cut(40 + payload))
        }
        _ => non_ip,
    }
}

/// xorshift64*: deterministic, seedable, and enough to spread frames
/// over the cases; no cryptographic claim.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // A zero state would stay zero.
        if self.0 == 0 {
            self.0 = 0x9e37_79b9_7f4a_7c15;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A few addresses, so that the map never fills and every entry is
/// checked; the last octet or group tells them apart.
fn v4(rng: &mut Rng, net: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 96, net, rng.range(1, 16) as u8)
}

fn v6(rng: &mut Rng, net: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x96, net, 0, 0, 0, 0, rng.range(1, 16) as u16)
}

/// An Ethernet header with `tags` VLAN tags (alternating 802.1ad and
/// 802.1Q, as QinQ stacks them) before `ethertype`.
fn l2(rng: &mut Rng, tags: usize, ethertype: u16) -> Vec<u8> {
    let mut f = rng.bytes(12);
    for t in 0..tags {
        let tpid = if t % 2 == 0 {
            ETH_P_8021AD
        } else {
            ETH_P_8021Q
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(rng.range(1, 4094) as u16).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A well-formed IPv4 header (`ihl` in 32-bit words) and `payload` bytes,
/// claiming `tot_len` (normally the real length).
fn ipv4(rng: &mut Rng, ihl: usize, payload: usize) -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
    let (src, dst) = (v4(rng, 0), v4(rng, 1));
    let mut h = vec![0u8; ihl.max(5) * 4];
    h[0] = 0x40 | ihl as u8;
    let tot = (h.len() + payload) as u16;
    h[2..4].copy_from_slice(&tot.to_be_bytes());
    h[8] = 64;
    h[9] = [6u8, 17, 1][rng.range(0, 2)];
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    h.extend(rng.bytes(payload));
    (h, src, dst)
}

fn ipv6(rng: &mut Rng, payload: usize) -> (Vec<u8>, Ipv6Addr, Ipv6Addr) {
    let (src, dst) = (v6(rng, 0), v6(rng, 1));
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload as u16).to_be_bytes());
    h[6] = [6u8, 17, 58][rng.range(0, 2)];
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h.extend(rng.bytes(payload));
    (h, src, dst)
}

fn pick(direction: Direction, src: impl Into<IpAddr>, dst: impl Into<IpAddr>) -> IpAddr {
    match direction {
        Direction::Rx => dst.into(),
        Direction::Tx => src.into(),
    }
}

/// One frame of a kind drawn at random, with what is known about it.
fn generate(rng: &mut Rng, direction: Direction) -> (&'static str, Vec<u8>, Known) {
    let tags = [0, 0, 1, 2][rng.range(0, 3)];
    match rng.range(0, 15) {
        kind @ 0..=12 => malformed(rng, tags, kind),
        13 => {
            // Well formed, maybe with options, maybe padded or truncated.
            let ihl = if rng.chance(80) { 5 } else { rng.range(6, 15) };
            let payload = rng.range(0, 1400);
            let (ip, src, dst) = ipv4(rng, ihl, payload);
            let claimed = ip.len();
            let mut f = l2(rng, tags, ETH_P_IP);
            let l3 = f.len();
            f.extend(ip);
            let kind = shape(rng, &mut f, l3 + ihl * 4);
            let counted = claimed.min(f.len() - l3) as u64;
            (
                kind.0,
                f,
                Known::Is(Bucket::Addr(pick(direction, src, dst), counted)),
            )
        }
        _ => {
            let payload = rng.range(0, 1400);
            let (ip, src, dst) = ipv6(rng, payload);
            let claimed = ip.len();
            let mut f = l2(rng, tags, ETH_P_IPV6);
            let l3 = f.len();
            f.extend(ip);
            let kind = shape(rng, &mut f, l3 + 40);
            let counted = claimed.min(f.len() - l3) as u64;
            (
                kind.1,
                f,
                Known::Is(Bucket::Addr(pick(direction, src, dst), counted)),
            )
        }
    }
}

/// A frame of malformed `kind` (0 to 12 of [`generate`]'s draw) behind
/// `tags` VLAN tags.
fn malformed(rng: &mut Rng, tags: usize, kind: usize) -> (&'static str, Vec<u8>, Known) {
    let non_ip = |f: &Vec<u8>| Known::Is(Bucket::NonIp(f.len() as u64));
    match kind {
        0 => {
            let n = rng.range(0, ETH_HLEN - 1);
            let f = rng.bytes(n);
            let known = non_ip(&f);
            ("shorter than an Ethernet header", f, known)
        }
        1 | 2 => {
            let n = rng.range(ETH_HLEN, 300);
            let f = rng.bytes(n);
            ("random bytes", f, Known::Model)
        }
        3 => {
            // Random bytes behind an IP ethertype: the IP paths with garbage.
            let ethertype = if rng.chance(50) { ETH_P_IP } else { ETH_P_IPV6 };
            let mut f = l2(rng, tags, ethertype);
            let n = rng.range(0, 120);
            f.extend(rng.bytes(n));
            ("IP ethertype, random payload", f, Known::Model)
        }
        4 => {
            let n = rng.range(0, 200);
            let (mut ip, ..) = ipv4(rng, 5, n);
            ip[0] = 0x40 | rng.range(0, 4) as u8;
            let mut f = l2(rng, tags, ETH_P_IP);
            f.extend(ip);
            let known = non_ip(&f);
            ("IPv4 with IHL below 5", f, known)
        }
        5 => {
            let n = rng.range(0, 200);
            let (mut ip, ..) = ipv4(rng, 5, n);
            let version = [0u8, 1, 5, 6, 15][rng.range(0, 4)];
            ip[0] = (version << 4) | 5;
            let mut f = l2(rng, tags, ETH_P_IP);
            f.extend(ip);
            let known = non_ip(&f);
            ("IPv4 ethertype, IP version not 4", f, known)
        }
        6 => {
            let ihl = rng.range(5, 15);
            let n = rng.range(0, 100);
            let (mut ip, ..) = ipv4(rng, ihl, n);
            let tot = rng.range(0, ihl * 4 - 1) as u16;
            ip[2..4].copy_from_slice(&tot.to_be_bytes());
            let mut f = l2(rng, tags, ETH_P_IP);
            f.extend(ip);
            let known = non_ip(&f);
            ("IPv4 total length shorter than its header", f, known)
        }
        7 => {
            let (ip, ..) = ipv4(rng, 5, 0);
            let mut f = l2(rng, tags, ETH_P_IP);
            f.extend(&ip[..rng.range(0, 19)]);
            let known = non_ip(&f);
            ("IPv4 header cut short", f, known)
        }
        8 => {
            // IHL claims options the frame does not hold.
            let ihl = rng.range(6, 15);
            let (ip, ..) = ipv4(rng, ihl, 0);
            let mut f = l2(rng, tags, ETH_P_IP);
            f.extend(&ip[..rng.range(20, ihl * 4 - 1)]);
            let known = non_ip(&f);
            ("IPv4 IHL beyond the frame", f, known)
        }
        9 => {
            let (ip, ..) = ipv6(rng, 0);
            let mut f = l2(rng, tags, ETH_P_IPV6);
            f.extend(&ip[..rng.range(0, 39)]);
            let known = non_ip(&f);
            ("IPv6 header cut short", f, known)
        }
        10 => {
            let n = rng.range(0, 200);
            let (mut ip, ..) = ipv6(rng, n);
            ip[0] = ([0u8, 4, 7, 15][rng.range(0, 3)] << 4) | (ip[0] & 0x0f);
            let mut f = l2(rng, tags, ETH_P_IPV6);
            f.extend(ip);
            let known = non_ip(&f);
            ("IPv6 ethertype, IP version not 6", f, known)
        }
        11 => {
            // Three tags: one more than a QinQ stack; not parsed.
            let n = rng.range(0, 200);
            let (ip, ..) = ipv4(rng, 5, n);
            let mut f = l2(rng, 3, ETH_P_IP);
            f.extend(ip);
            let known = non_ip(&f);
            ("three VLAN tags", f, known)
        }
        _ => {
            // 12: the frame ends inside a VLAN tag.
            let tags = rng.range(1, 2);
            let mut f = l2(rng, tags, ETH_P_IP);
            f.truncate(rng.range(ETH_HLEN, f.len() - 1));
            let tpid = u16::from_be_bytes([f[12], f[13]]);
            let known = if tpid == ETH_P_8021AD || tpid == ETH_P_8021Q {
                non_ip(&f)
            } else {
                Known::Model
            };
            ("VLAN tag cut short", f, known)
        }
    }
}

/// Leaves a well-formed frame as is, pads it (as Ethernet pads short
/// frames), or cuts it anywhere after its IP header (`min_len`).
fn shape(rng: &mut Rng, f: &mut Vec<u8>, min_len: usize) -> (&'static str, &'static str) {
    match rng.range(0, 2) {
        0 => ("IPv4, well formed", "IPv6, well formed"),
        1 => {
            let n = rng.range(1, 64);
            f.extend(rng.bytes(n));
            ("IPv4 with trailing padding", "IPv6 with trailing padding")
        }
        _ => {
            if f.len() > min_len {
                f.truncate(rng.range(min_len, f.len() - 1));
            }
            (
                "IPv4 cut short of its total length",
                "IPv6 cut short of its payload length",
            )
        }
    }
}
