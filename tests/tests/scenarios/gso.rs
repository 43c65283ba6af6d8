//! GSO aggregates, made up and fed to the loaded programs through
//! BPF_PROG_TEST_RUN: the skb's `gso_segs` and `gso_size` are set in the
//! `__sk_buff` context, which no real traffic lets a test choose.

use std::{
    collections::BTreeMap,
    mem::{offset_of, size_of},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aliasstat::bpf::{
    counters::{CounterSource as _, PinnedMaps},
    load,
};
use anyhow::{Context, Result, ensure};
use aya::{
    programs::{ProgramError, ProgramType, SchedClassifier, TestRun as _, TestRunOptions},
    sys::is_program_supported,
};
use aya_ebpf_bindings::bindings::{__sk_buff, TC_ACT_UNSPEC};
use common::{
    Direction,
    names::{DEFAULT_ADDRESS_CAPACITY, TC_EGRESS, TC_INGRESS},
};
use lab::{
    BpfDir, Count,
    frames::{L4, ip_frame, ip_header_len},
};

use crate::{Outcome, check_eq};

// The uapi layout, as bindgen read it from the kernel headers. The numbers
// are those of include/uapi/linux/bpf.h since 5.x (compiled with offsetof);
// a mismatch here means these bindings are not that header.
const _: () = assert!(size_of::<__sk_buff>() == 192);
const _: () = assert!(offset_of!(__sk_buff, gso_segs) == 164);
const _: () = assert!(offset_of!(__sk_buff, gso_size) == 176);

/// Loopback's ifindex in every namespace: BPF_PROG_TEST_RUN hands the
/// program an skb on the caller's loopback unless the context names another
/// device.
const LOOPBACK_IFINDEX: u32 = 1;
const TCP_TS: L4 = L4::Tcp { header_len: 32 };

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// `fd00:78:<net>::<host>`.
const fn v6(net: u16, host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x78, net, 0, 0, 0, 0, host))
}

struct Case {
    what: &'static str,
    src: IpAddr,
    dst: IpAddr,
    l4: L4,
    payload: usize,
    /// 0: not an aggregate.
    gso_size: u32,
    /// Whether `gso_segs` is filled in; left at 0, the program must derive it
    /// from the sizes, as the stack does for untrusted sources.
    set_segs: bool,
}

/// Every case has its own addresses, so each is checked on its own. All
/// frames stay under the ~3.7 KB that BPF_PROG_TEST_RUN takes for an skb.
const CASES: [Case; 7] = [
    Case {
        what: "plain TCP/IPv4",
        src: v4(10, 78, 0, 1),
        dst: v4(10, 78, 1, 1),
        l4: TCP_TS,
        payload: 100,
        gso_size: 0,
        set_segs: false,
    },
    Case {
        what: "TCP/IPv4 GSO, short last segment",
        src: v4(10, 78, 0, 2),
        dst: v4(10, 78, 1, 2),
        l4: TCP_TS,
        payload: 2 * 1448 + 100,
        gso_size: 1448,
        set_segs: true,
    },
    Case {
        what: "TCP/IPv4 GSO, no options",
        src: v4(10, 78, 0, 3),
        dst: v4(10, 78, 1, 3),
        l4: L4::Tcp { header_len: 20 },
        payload: 1600,
        gso_size: 500,
        set_segs: true,
    },
    Case {
        what: "TCP/IPv4 GSO, gso_segs left 0",
        src: v4(10, 78, 0, 4),
        dst: v4(10, 78, 1, 4),
        l4: TCP_TS,
        payload: 2500,
        gso_size: 1000,
        set_segs: false,
    },
    Case {
        what: "TCP/IPv6 GSO",
        src: v6(0, 1),
        dst: v6(1, 1),
        l4: TCP_TS,
        payload: 3000,
        gso_size: 1000,
        set_segs: true,
    },
    Case {
        what: "UDP/IPv4 GSO",
        src: v4(10, 78, 0, 5),
        dst: v4(10, 78, 1, 5),
        l4: L4::Udp,
        payload: 3000,
        gso_size: 1200,
        set_segs: true,
    },
    Case {
        what: "UDP/IPv6 GSO",
        src: v6(0, 2),
        dst: v6(1, 2),
        l4: L4::Udp,
        payload: 2800,
        gso_size: 700,
        set_segs: true,
    },
];

impl Case {
    /// The payload of each wire segment the aggregate is cut into.
    fn segments(&self) -> Vec<usize> {
        if self.gso_size == 0 {
            return vec![self.payload];
        }
        let size = self.gso_size as usize;
        (0..self.payload)
            .step_by(size)
            .map(|at| size.min(self.payload - at))
            .collect()
    }

    /// What the wire carries once the aggregate is segmented: every
    /// segment repeats the IP and transport headers.
    fn expected(&self) -> Count {
        let headers = ip_header_len(self.src) + self.l4.header_len();
        self.segments()
            .into_iter()
            .map(|payload| Count::one((headers + payload) as u64))
            .sum()
    }

    /// A `__sk_buff` that is zero except for the GSO fields, as the kernel
    /// requires of every field it does not take from user space.
    fn context(&self) -> Vec<u8> {
        let mut ctx = vec![0u8; size_of::<__sk_buff>()];
        let segs = if self.set_segs {
            self.segments().len() as u32
        } else {
            0
        };
        let mut put = |at: usize, v: u32| ctx[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        put(offset_of!(__sk_buff, gso_segs), segs);
        put(offset_of!(__sk_buff, gso_size), self.gso_size);
        ctx
    }

    fn frame(&self) -> Vec<u8> {
        ip_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            self.src,
            self.dst,
            self.l4,
            self.payload,
        )
    }
}

pub fn run() -> Result<Outcome> {
    if !is_program_supported(ProgramType::SchedClassifier)? {
        return Ok(Outcome::Skipped(
            "the kernel does not load TC classifiers".to_owned(),
        ));
    }
    let pins = BpfDir::new("gso")?;
    let mut ebpf = load::load(pins.path(), DEFAULT_ADDRESS_CAPACITY)?;
    for program in [TC_INGRESS, TC_EGRESS] {
        let prog: &mut SchedClassifier = load::program(&mut ebpf, program)?;
        for case in &CASES {
            match test_run(prog, case) {
                // The programs only count: whatever they see, they let through.
                Ok(verdict) => ensure!(
                    verdict == TC_ACT_UNSPEC,
                    "{program} returned {verdict} for {}, not TC_ACT_UNSPEC",
                    case.what
                ),
                Err(e) if case.gso_size != 0 && is_einval(&e) => {
                    return Ok(Outcome::Skipped(format!(
                        "BPF_PROG_TEST_RUN rejects gso_size/gso_segs in the skb context ({e})"
                    )));
                }
                Err(e) => return Err(e).with_context(|| format!("{program}: {}", case.what)),
            }
        }
    }

    let snap = PinnedMaps::open(pins.path())?.snapshot()?;
    let mut counted = BTreeMap::new();
    for entry in &snap.addresses {
        ensure!(
            entry.ifindex == LOOPBACK_IFINDEX,
            "counted on ifindex {}: {entry:?}",
            entry.ifindex
        );
        let counters = Count::new(entry.counters.packets, entry.counters.bytes);
        counted.insert((entry.direction, entry.address), counters);
    }
    let mut expected = BTreeMap::new();
    for case in &CASES {
        let count = case.expected();
        println!(
            "  {:<34} {:>2} segments: {count}",
            case.what,
            case.segments().len()
        );
        expected.insert((Direction::Rx, case.dst), count);
        expected.insert((Direction::Tx, case.src), count);
    }
    check_eq("counts by (direction, address)", &expected, &counted)?;
    ensure!(
        snap.other.iter().all(|o| o.counters.packets == 0),
        "something went to non_ip or overflow: {:?}",
        snap.other
    );
    Ok(Outcome::Passed)
}

/// Runs `prog` once on `case`'s frame and context; returns its verdict.
fn test_run(prog: &SchedClassifier, case: &Case) -> Result<i32, ProgramError> {
    let frame = case.frame();
    let ctx = case.context();
    let result = prog.test_run(TestRunOptions {
        data_in: Some(&frame),
        ctx_in: Some(&ctx),
        ..TestRunOptions::default()
    })?;
    Ok(result.return_value as i32)
}

fn is_einval(e: &ProgramError) -> bool {
    matches!(e, ProgramError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::EINVAL))
}
