//! The half of `cargo xtask bench` that needs aya and the aliasstat
//! library: xtask cannot depend on them (building aliasstat needs the
//! bpf-linker that `cargo xtask setup` installs), so it builds this target
//! and runs it. Needs root. Every subcommand prints one JSON object.
//!
//! ```text
//! probe testrun --repeat R --trials T    per-packet cost (BPF_PROG_TEST_RUN)
//! probe testrun-services --repeat R --trials T
//!                                        the same for the cgroup_skb
//!                                        service program, per delivered
//!                                        packet, against an empty one
//! probe fill --bpffs DIR --entries N --ifindex I
//! probe read --bpffs DIR --trials T      one snapshot, batched vs per key
//! probe memory [--capacity N] --cpus C   every map's kernel memory at
//!                                        address capacity N (default: the
//!                                        default): fdinfo, and the formula
//!                                        here and at C CPUs
//! probe hold-xdp --iface IF              attach the empty XDP program
//!                                        until stdin closes
//! probe history --dir DIR --addresses N --days D --trials T
//!                                        the history store: one interval's
//!                                        write for N addresses, bytes per
//!                                        address per day over D days, and
//!                                        a report over them
//! probe peer-record --dir DIR --pairs N --addresses A --changed C --trials T
//!                                        the peer record's save after a
//!                                        sweep that changed C of N pairs,
//!                                        against a full rewrite
//! probe peer-rates --dir DIR --pairs N --addresses A --trials T
//!                                        the rate task's read with N pairs
//!                                        in the peer table
//! ```

use std::{
    collections::HashMap,
    io::Read as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Instant,
};

use aliasstat::bpf::{
    counters::{PinnedMaps, ReadMethod},
    load,
    memory::MapMemory,
    pins,
    sys::{self, batch_value_size},
};
use anyhow::{Context as _, Result, bail, ensure};
use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHash, MapData, PerCpuHashMap},
    programs::{CgroupSkb, Program, SchedClassifier, TestRun as _, TestRunOptions, Xdp, XdpMode},
};
use common::{
    Addr4Key, Addr6Key, Counters, Direction, Service4Key, Service6Key,
    names::{
        ADDRESSES_V4, ADDRESSES_V6, BENCH_EMPTY_CGROUP, BENCH_EMPTY_TC, BENCH_EMPTY_XDP,
        BENCH_KEYED_TC, BENCH_KEYED_XDP, BENCH_REKEY_TC, BENCH_REKEY_XDP, CGROUP_INGRESS,
        DEFAULT_ADDRESS_CAPACITY, PEERS, PEERS_MISSED, PEERS_ON, PEERS_V4, SERVICE_NETNS,
        SERVICES_V4, SERVICES_V6, TC_INGRESS, XDP_INGRESS,
    },
    peer::{Peer4Key, PeerCounts, PeerKey, PeerMissKey},
};
use lab::{
    BpfDir,
    frames::{ETH_HLEN, L4, ip_frame},
};
use serde_json::{Value, json};

#[path = "probe/peers.rs"]
mod peers;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        bail!(
            "usage: probe testrun|fill|read|memory|hold-xdp ...; run it through `cargo xtask bench`"
        );
    };
    let flags = Flags::parse(args)?;
    let out = match command.as_str() {
        "testrun" => testrun(flags.num("repeat")?, flags.num("trials")?)?,
        "testrun-services" => testrun_services(flags.num("repeat")?, flags.num("trials")?)?,
        "fill" => fill(
            flags.get("bpffs")?,
            flags.num("entries")?,
            flags.num("ifindex")?,
        )?,
        "read" => read(flags.get("bpffs")?, flags.num("trials")?)?,
        "memory" => memory(
            flags.num_or("capacity", DEFAULT_ADDRESS_CAPACITY)?,
            flags.num("cpus")?,
        )?,
        "hold-xdp" => hold_xdp(flags.get("iface")?)?,
        "history" => history(
            flags.get("dir")?,
            flags.num("addresses")?,
            flags.num("days")?,
            flags.num("trials")?,
        )?,
        "peer-record" => peers::record(
            flags.get("dir")?.as_ref(),
            flags.num("pairs")?,
            flags.num("addresses")?,
            flags.num("changed")?,
            flags.num("trials")?,
        )?,
        "peer-rates" => peers::rates(
            flags.get("dir")?.as_ref(),
            flags.num("pairs")?,
            flags.num("addresses")?,
            flags.num("trials")?,
        )?,
        // `cargo bench` runs bench targets with `--bench`: say where to go.
        _ => bail!("unknown subcommand `{command}`; run the benchmarks with `cargo xtask bench`"),
    };
    println!("{out}");
    Ok(())
}

/// `--name value` pairs.
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self> {
        let mut flags = HashMap::new();
        while let Some(flag) = args.next() {
            let name = flag
                .strip_prefix("--")
                .with_context(|| format!("expected a --flag, got `{flag}`"))?;
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            flags.insert(name.to_owned(), value);
        }
        Ok(Self(flags))
    }

    fn get(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("--{name} is required"))
    }

    /// `--name`, or `default` when it is not given.
    fn num_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        if self.0.contains_key(name) {
            self.num(name)
        } else {
            Ok(default)
        }
    }

    fn num<T: std::str::FromStr>(&self, name: &str) -> Result<T> {
        let value = self.get(name)?;
        value
            .parse()
            .ok()
            .with_context(|| format!("--{name}: `{value}` is not a number"))
    }
}

// ---------------------------------------------------------------------------
// Per-packet cost under BPF_PROG_TEST_RUN.

/// Distinct keys per keyed case; powers of two, since the frame carries
/// `keys - 1` as its mask (see ebpf-prog/src/bench.rs).
const KEY_SETS: [u32; 3] = [1, 1024, 65536];
/// Room for every case's keys at once (both families' 64k, 1k, hot keys).
const TESTRUN_CAPACITY: u32 = 262_144;
/// UDP payload of the test frames: 60-byte IPv4 frames, the Ethernet
/// minimum, so the figures are for the smallest (costliest per byte)
/// packets. IPv6 frames are 20 bytes longer.
const PAYLOAD: usize = 18;

#[derive(Clone, Copy)]
enum Hook {
    Tc,
    Xdp,
}

impl Hook {
    const fn name(self) -> &'static str {
        match self {
            Self::Tc => "tc",
            Self::Xdp => "xdp",
        }
    }

    const fn programs(self) -> [&'static str; 4] {
        match self {
            Self::Tc => [BENCH_EMPTY_TC, TC_INGRESS, BENCH_REKEY_TC, BENCH_KEYED_TC],
            Self::Xdp => [
                BENCH_EMPTY_XDP,
                XDP_INGRESS,
                BENCH_REKEY_XDP,
                BENCH_KEYED_XDP,
            ],
        }
    }

    /// The real program as `run --peers off` loads it: a name of this
    /// bench's own, run from the second object.
    const fn peers_off(self) -> &'static str {
        match self {
            Self::Tc => "aliasstat_tc_ingress --peers off",
            Self::Xdp => "aliasstat_xdp_ingress --peers off",
        }
    }

    /// The object and program name that run `name`.
    fn resolve<'a>(name: &'static str, on: &'a Ebpf, off: &'a Ebpf) -> (&'a Ebpf, &'static str) {
        match name {
            n if n == Self::Tc.peers_off() => (off, TC_INGRESS),
            n if n == Self::Xdp.peers_off() => (off, XDP_INGRESS),
            n => (on, n),
        }
    }
}

/// The object with the peer table off, as `run --peers off` loads it, with
/// its maps under `pins`; only the two real programs are loaded.
fn load_peers_off(pins: &BpfDir) -> Result<Ebpf> {
    let maps = pins::maps_dir(pins.path(), pins::LAYOUT_VERSION);
    std::fs::create_dir_all(&maps)?;
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(&maps)
        .map_max_entries(ADDRESSES_V4, TESTRUN_CAPACITY)
        .map_max_entries(ADDRESSES_V6, TESTRUN_CAPACITY)
        .override_global(PEERS_ON, &0u8, true)
        .load(load::OBJECT)
        .context("failed to load the eBPF object with the peer table off")?;
    for name in [TC_INGRESS, XDP_INGRESS] {
        match ebpf.program_mut(name) {
            Some(Program::SchedClassifier(p)) => p.load(),
            Some(Program::Xdp(p)) => p.load(),
            _ => bail!("{name} is neither TC nor XDP"),
        }
        .with_context(|| format!("failed to load {name} with the peer table off"))?;
    }
    Ok(ebpf)
}

/// One line of the table: a hook, a family and a key count, and the
/// programs whose per-run times are collected for it.
struct Case {
    hook: Hook,
    family: u8,
    /// `None`: one hot key through the real program.
    keys: Option<u32>,
    frame: Vec<u8>,
    /// Program name and its per-trial nanoseconds per run.
    times: Vec<(&'static str, Vec<u64>)>,
}

/// The destination the runs count: `10.<net>.0.0` or `fd00:<net>::`, whose
/// low 16 bits the keyed programs step through.
fn frame(family: u8, net: u8, mask: u16) -> Vec<u8> {
    let (src, dst): (IpAddr, IpAddr) = match family {
        4 => (
            Ipv4Addr::new(10, 75, 0, 1).into(),
            Ipv4Addr::new(10, net, 0, 0).into(),
        ),
        _ => (
            Ipv6Addr::new(0xfd00, 0x75, 0, 0, 0, 0, 0, 1).into(),
            Ipv6Addr::new(0xfd00, u16::from(net), 0, 0, 0, 0, 0, 0).into(),
        ),
    };
    let mut f = ip_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        src,
        dst,
        L4::Udp,
        PAYLOAD,
    );
    // Where the keyed programs find the mask: the IPv4 identification, or
    // the low half of the IPv6 flow label.
    let at = if family == 4 {
        ETH_HLEN + 4
    } else {
        ETH_HLEN + 2
    };
    f[at..at + 2].copy_from_slice(&mask.to_be_bytes());
    f
}

/// What every test-run measurement starts with: its arguments checked, the
/// thread on the last CPU (xtask and the shell tend to run on the first),
/// and a pin directory of its own, returned with its maps directory.
fn testrun_setup(repeat: u32, trials: usize, name: &str) -> Result<(BpfDir, PathBuf)> {
    ensure!(
        repeat > 0 && trials > 0,
        "--repeat and --trials must be positive"
    );
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    lab::pin_to(cpus - 1)?;
    let pins = BpfDir::new(name)?;
    let maps = pins::maps_dir(pins.path(), pins::LAYOUT_VERSION);
    std::fs::create_dir_all(&maps)?;
    Ok((pins, maps))
}

fn testrun(repeat: u32, trials: usize) -> Result<Value> {
    let (_pins, maps) = testrun_setup(repeat, trials, "bench")?;
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(&maps)
        .map_max_entries(ADDRESSES_V4, TESTRUN_CAPACITY)
        .map_max_entries(ADDRESSES_V6, TESTRUN_CAPACITY)
        // Every keyed case's pairs fit too, so no run takes the full path
        // (`peer_entries` shows it: nothing in PEERS_MISSED).
        .map_max_entries(PEERS_V4, TESTRUN_CAPACITY)
        .map_max_entries(PEERS, TESTRUN_CAPACITY)
        .load(load::OBJECT)
        .context("failed to load the eBPF object")?;
    let off_pins = BpfDir::new("bench-off")?;
    let off = load_peers_off(&off_pins)?;
    for hook in [Hook::Tc, Hook::Xdp] {
        for name in hook.programs() {
            let program = ebpf
                .program_mut(name)
                .with_context(|| format!("no program {name} in the object"))?;
            match program {
                Program::SchedClassifier(p) => p.load(),
                Program::Xdp(p) => p.load(),
                _ => bail!("{name} is neither TC nor XDP"),
            }
            .with_context(|| format!("failed to load {name}"))?;
        }
    }

    let mut cases = Vec::new();
    for hook in [Hook::Tc, Hook::Xdp] {
        let [empty, real, rekey, keyed] = hook.programs();
        for family in [4u8, 6] {
            cases.push(Case {
                hook,
                family,
                keys: None,
                frame: frame(family, 76, 0),
                times: vec![(empty, vec![]), (real, vec![]), (hook.peers_off(), vec![])],
            });
            for (i, keys) in KEY_SETS.into_iter().enumerate() {
                let mask = u16::try_from(keys - 1).context("key sets fit 16 bits")?;
                cases.push(Case {
                    hook,
                    family,
                    keys: Some(keys),
                    frame: frame(family, 77 + i as u8, mask),
                    times: vec![(empty, vec![]), (rekey, vec![]), (keyed, vec![])],
                });
            }
        }
    }

    // Warm-up: one pass over each key set creates its entries, so the
    // measured runs are the steady state (lookup hit, add in place) and
    // not the first-packet inserts.
    for case in &cases {
        let keys = case.keys.unwrap_or(1);
        for &(name, _) in &case.times {
            let (object, program) = Hook::resolve(name, &ebpf, &off);
            run(object, program, &case.frame, keys)?;
        }
    }
    // Trials interleave the cases, so a slow patch of the machine touches
    // every case rather than one.
    for _ in 0..trials {
        for case in &mut cases {
            for (name, times) in &mut case.times {
                let (object, program) = Hook::resolve(name, &ebpf, &off);
                times.push(run(object, program, &case.frame, repeat)?);
            }
        }
    }
    let filled = ebpf_entries(&ebpf)?;
    let insns = translated(&ebpf, &off)?;
    let rows: Vec<Value> = cases
        .iter()
        .map(|c| {
            let times: serde_json::Map<String, Value> = c
                .times
                .iter()
                .map(|(name, t)| ((*name).to_owned(), json!(t)))
                .collect();
            json!({
                "hook": c.hook.name(),
                "family": c.family,
                "keys": c.keys,
                "frame_bytes": c.frame.len(),
                "ns": times,
            })
        })
        .collect();
    Ok(json!({
        "repeat": repeat,
        "trials": trials,
        "map_entries": filled,
        "peer_entries": peer_entries(&ebpf)?,
        "insns": insns,
        "rows": rows,
    }))
}

/// The cgroup_skb ingress program that counts per service, against the
/// empty one, on one hot (cgroup, address) key per family. The test run's
/// socket lives in this namespace, whose cookie is set at load as the
/// daemon sets it, so the program counts every run as a delivered packet.
fn testrun_services(repeat: u32, trials: usize) -> Result<Value> {
    let (_pins, maps) = testrun_setup(repeat, trials, "bench-svc")?;
    let cookie = aliasstat::services::kernel::netns_cookie()?;
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(&maps)
        .override_global(SERVICE_NETNS, &cookie, true)
        .load(load::OBJECT)
        .context("failed to load the eBPF object")?;
    for name in [BENCH_EMPTY_CGROUP, CGROUP_INGRESS] {
        let program: &mut CgroupSkb = ebpf
            .program_mut(name)
            .with_context(|| format!("no program {name} in the object"))?
            .try_into()?;
        program
            .load()
            .with_context(|| format!("failed to load {name}"))?;
    }
    let mut rows = Vec::new();
    for family in [4u8, 6] {
        let frame = frame(family, 79, 0);
        let mut times = [
            (BENCH_EMPTY_CGROUP, Vec::new()),
            (CGROUP_INGRESS, Vec::new()),
        ];
        // Warm-up: the first run inserts the key; the rest add in place.
        for (name, _) in &times {
            run(&ebpf, name, &frame, 1)?;
        }
        for _ in 0..trials {
            for (name, t) in &mut times {
                t.push(run(&ebpf, name, &frame, repeat)?);
            }
        }
        let [(_, empty), (_, service)] = &times;
        rows.push(json!({
            "family": family,
            "frame_bytes": frame.len(),
            "ns": { "empty": empty, "service": service },
        }));
    }
    let counted = [
        entries::<Service4Key>(&ebpf, SERVICES_V4)?,
        entries::<Service6Key>(&ebpf, SERVICES_V6)?,
    ];
    ensure!(
        counted == [1, 1],
        "the service program counted {counted:?} keys (IPv4, IPv6), not one per family: it did not take the test runs for this namespace's"
    );
    Ok(json!({ "repeat": repeat, "trials": trials, "rows": rows }))
}

/// Runs program `name` `repeat` times on `frame`; the kernel's average
/// nanoseconds per run (it truncates to whole nanoseconds).
fn run(ebpf: &Ebpf, name: &str, frame: &[u8], repeat: u32) -> Result<u64> {
    let opts = TestRunOptions {
        data_in: Some(frame),
        repeat,
        ..TestRunOptions::default()
    };
    let result = match ebpf.program(name) {
        Some(Program::SchedClassifier(p)) => SchedClassifier::test_run(p, opts),
        Some(Program::Xdp(p)) => Xdp::test_run(p, opts),
        Some(Program::CgroupSkb(p)) => CgroupSkb::test_run(p, opts),
        _ => bail!("no TC, XDP or cgroup_skb program {name}"),
    }
    .with_context(|| format!("BPF_PROG_TEST_RUN of {name}"))?;
    Ok(result.duration.as_nanos() as u64)
}

/// Entries in the object's address maps: a check that the keyed runs
/// really spread over their key sets.
fn ebpf_entries(ebpf: &Ebpf) -> Result<usize> {
    Ok(entries::<Addr4Key>(ebpf, ADDRESSES_V4)? + entries::<Addr6Key>(ebpf, ADDRESSES_V6)?)
}

/// Entries in the object's per-CPU hash `name`.
fn entries<K: aya::Pod>(ebpf: &Ebpf, name: &str) -> Result<usize> {
    let map = ebpf.map(name).with_context(|| format!("no map {name}"))?;
    let map: PerCpuHashMap<&MapData, K, Counters> = PerCpuHashMap::try_from(map)?;
    Ok(map.keys().filter(Result::is_ok).count())
}

/// Entries in the peer tables and the not-recorded map: a check that no
/// keyed run found its table full.
fn peer_entries(ebpf: &Ebpf) -> Result<Value> {
    fn entries<K: aya::Pod, V: aya::Pod>(ebpf: &Ebpf, name: &str) -> Result<usize> {
        let map = ebpf.map(name).with_context(|| format!("no map {name}"))?;
        let map: BpfHash<&MapData, K, V> = BpfHash::try_from(map)?;
        Ok(map.keys().filter(Result::is_ok).count())
    }
    let counts = [
        (PEERS_V4, entries::<Peer4Key, PeerCounts>(ebpf, PEERS_V4)?),
        (PEERS, entries::<PeerKey, PeerCounts>(ebpf, PEERS)?),
        (
            PEERS_MISSED,
            entries::<PeerMissKey, Counters>(ebpf, PEERS_MISSED)?,
        ),
    ];
    Ok(counts
        .into_iter()
        .map(|(name, n)| (name.to_owned(), json!(n)))
        .collect::<serde_json::Map<_, _>>()
        .into())
}

/// The instructions of each real program as the verifier left them
/// (xlated), with the peer table on and off.
fn translated(on: &Ebpf, off: &Ebpf) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for hook in [Hook::Tc, Hook::Xdp] {
        let real = hook.programs()[1];
        for name in [real, hook.peers_off()] {
            let (object, program) = Hook::resolve(name, on, off);
            let info = match object.program(program) {
                Some(Program::SchedClassifier(p)) => p.info(),
                Some(Program::Xdp(p)) => p.info(),
                _ => bail!("no TC or XDP program {program}"),
            }
            .with_context(|| format!("the kernel's description of {name}"))?;
            let insns = info.size_translated().map(|bytes| bytes / 8);
            out.insert(name.to_owned(), json!(insns));
        }
    }
    Ok(out.into())
}

// ---------------------------------------------------------------------------
// Userspace: fill a daemon's pinned map, time one read of it.

/// The `i`th filler address: `100.64.0.0/10` (shared address space, never
/// routed here) holds 4M of them.
fn filler(i: u32) -> [u8; 4] {
    (u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i).to_be_bytes()
}

fn fill(bpffs: &str, entries: u32, ifindex: u32) -> Result<Value> {
    ensure!(
        entries < 1 << 22,
        "--entries must stay within 100.64.0.0/10"
    );
    let path = pins::maps_dir(bpffs.as_ref(), pins::LAYOUT_VERSION).join(ADDRESSES_V4);
    let map = MapData::from_pin(&path).with_context(|| format!("open {}", path.display()))?;
    let cpus = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))?;
    let started = Instant::now();
    let value_size = batch_value_size(size_of::<Counters>(), Some(cpus));
    // Chunks keep the buffers small; each CPU slot gets its own count so
    // that a read which mixed up slots would be caught.
    const CHUNK: u32 = 65_536;
    let mut at = 0;
    while at < entries {
        let end = entries.min(at + CHUNK);
        let keys: Vec<Addr4Key> = (at..end)
            .map(|i| Addr4Key::new(ifindex, Direction::Rx, filler(i)))
            .collect();
        let values: Vec<Counters> = (at..end)
            .flat_map(|i| {
                (0..cpus as u64).map(move |cpu| Counters::new(cpu + 1, u64::from(i % 1500) + 60))
            })
            .collect();
        let written = sys::update_batch(
            std::os::fd::AsFd::as_fd(map.fd()),
            size_of::<Addr4Key>(),
            value_size,
            bytemuck::cast_slice(&keys),
            bytemuck::cast_slice(&values),
            0,
        )
        .with_context(|| format!("fill {}", path.display()))?;
        ensure!(
            written == keys.len(),
            "wrote {written} of {} entries",
            keys.len()
        );
        at = end;
    }
    Ok(json!({ "filled": entries, "seconds": started.elapsed().as_secs_f64() }))
}

/// CPU seconds this thread has run: what a read costs whatever else the
/// machine is doing, to set against the daemon's CPU time per scrape.
fn thread_cpu() -> f64 {
    cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time of every thread of this process: a report adds up on a
/// second thread.
fn process_cpu() -> f64 {
    cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn read(bpffs: &str, trials: usize) -> Result<Value> {
    let maps = PinnedMaps::open(bpffs.as_ref())?;
    let (mut batched, mut batched_cpu, mut per_key) = (Vec::new(), Vec::new(), Vec::new());
    let mut entries = 0;
    for _ in 0..trials {
        let (started, cpu) = (Instant::now(), thread_cpu());
        let a = maps.snapshot_by(ReadMethod::Batched)?;
        batched.push(started.elapsed().as_secs_f64());
        batched_cpu.push(thread_cpu() - cpu);
        let started = Instant::now();
        let b = maps.snapshot_by(ReadMethod::PerKey)?;
        per_key.push(started.elapsed().as_secs_f64());
        ensure!(a == b, "the batched and the per-key snapshot differ");
        entries = a.addresses.len() + a.other.len();
    }
    Ok(json!({
        "entries": entries,
        "batched": batched,
        "batched_cpu": batched_cpu,
        "per_key": per_key,
    }))
}

// ---------------------------------------------------------------------------
// Kernel memory of the maps.

/// Loads the object with an address map of `capacity` (in a pin directory
/// of its own) and reports every map's `memlock`, next to the formula for
/// this host and for one with `cpus` CPUs.
fn memory(capacity: u32, cpus: u64) -> Result<Value> {
    let pins = BpfDir::new("bench-memory")?;
    let ebpf = load::load(pins.path(), capacity)?;
    let memory = MapMemory::of(&ebpf)?;
    let here = aya::util::nr_cpus().map_err(|(path, e)| anyhow::anyhow!("{path}: {e}"))? as u64;
    let read = memory.read();
    let maps: Vec<Value> = memory
        .shapes()
        .map(|(name, shape)| {
            let fdinfo = read.iter().find(|m| m.name == name).map(|m| m.bytes);
            json!({
                "name": name,
                "fdinfo": fdinfo,
                "formula": shape.kernel_bytes(here),
                "formula_cpus": shape.kernel_bytes(cpus),
            })
        })
        .collect();
    Ok(json!({ "cpus": here, "capacity": capacity, "maps": maps }))
}

// ---------------------------------------------------------------------------
// The live benchmark's empty-XDP baseline.

/// Attaches the empty XDP program to `iface` (in the caller's namespace),
/// says so on stdout, and detaches when stdin closes.
fn hold_xdp(iface: &str) -> Result<Value> {
    // The object's maps want a pin directory; the empty program uses none.
    let pins = BpfDir::new("bench-xdp")?;
    let mut ebpf = EbpfLoader::new()
        .default_map_pin_directory(pins.path())
        .load(load::OBJECT)
        .context("failed to load the eBPF object")?;
    let xdp: &mut Xdp = ebpf
        .program_mut(BENCH_EMPTY_XDP)
        .context("no empty XDP program")?
        .try_into()?;
    xdp.load()?;
    // The daemon's mode too: the kernel picks native XDP on a veth.
    xdp.attach(iface, XdpMode::Default)
        .with_context(|| format!("attach {BENCH_EMPTY_XDP} to {iface}"))?;
    println!("{}", json!({ "attached": iface }));
    // Blocks until xtask is done with this baseline and closes the pipe.
    std::io::stdin().read_to_end(&mut Vec::new())?;
    Ok(json!({ "detached": iface }))
}

/// A deterministic traffic mix: per address a steady rate between about
/// 3 kbit/s and 3 Mbit/s, varying by up to ±50 % from one interval to the
/// next, about 800 bytes a packet. Every address is active every interval.
fn interval_traffic(
    addresses: usize,
    interval: u64,
) -> Vec<(
    aliasstat::history::store::SeriesKey,
    aliasstat::history::codec::Traffic,
)> {
    (0..addresses)
        .map(|i| {
            let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ interval.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 31;
            let base = 100_000u64 << (i % 11);
            let rx_bytes = base / 2 + x % base;
            let tx_bytes = rx_bytes / 4 + (x >> 20) % 1000;
            let key = aliasstat::history::store::SeriesKey {
                interface: "eth0".into(),
                address: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                alias: format!("alias-{i}"),
                owner: format!("owner-{}", i % 50),
            };
            let traffic = aliasstat::history::codec::Traffic {
                rx: Counters::new(rx_bytes / 800 + 1, rx_bytes),
                tx: Counters::new(tx_bytes / 800 + 1, tx_bytes),
            };
            (key, traffic)
        })
        .collect()
}

/// The history store: write `days` of 5-minute intervals for `addresses`
/// addresses, timing each write, then the size per address per day and a
/// report over the whole period.
fn history(dir: &str, addresses: usize, days: u64, trials: usize) -> Result<Value> {
    use aliasstat::history::{
        percentile::{Percentile, Rule},
        report,
        store::{BaselineRecord, Store},
    };
    let step: i64 = 300_000;
    let dir = std::path::Path::new(dir);
    let mut store = Store::open(dir)?;
    let baseline = BaselineRecord {
        epoch: "bench".into(),
        at_ms: 0,
        counts: Vec::new(),
    };
    let intervals = days * 288;
    let mut writes = Vec::with_capacity(intervals as usize);
    for k in 0..intervals {
        let traffic = interval_traffic(addresses, k);
        let start = k as i64 * step;
        let t = Instant::now();
        store.write(Some((start, start + step, step)), &traffic, &baseline)?;
        writes.push(t.elapsed().as_secs_f64());
    }
    drop(store);
    let store = Store::open(dir)?;
    let size = store.size()?;
    let (mut reports, mut reports_cpu) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let (t, cpu) = (Instant::now(), process_cpu());
        let r = report::local(
            &store,
            report::Query {
                from_ms: 0,
                to_ms: intervals as i64 * step,
                by: report::By::Alias,
                percentile: Percentile::P95,
                rule: Rule::Max,
            },
        )?;
        reports.push(t.elapsed().as_secs_f64());
        reports_cpu.push(process_cpu() - cpu);
        ensure!(
            r.rows.len() == addresses && r.sampled == intervals as usize,
            "the report lost rows or intervals"
        );
    }
    writes.sort_by(f64::total_cmp);
    reports.sort_by(f64::total_cmp);
    reports_cpu.sort_by(f64::total_cmp);
    Ok(json!({
        "addresses": addresses,
        "intervals": intervals,
        "write_seconds_median": writes[writes.len() / 2],
        "db_bytes": size,
        "bytes_per_address_day": size as f64 / (addresses as f64 * days as f64),
        "report_seconds_median": reports[reports.len() / 2],
        // The CPU the report's two threads used: what a loaded machine's
        // wall time exceeds by whatever the other processes took.
        "report_cpu_seconds_median": reports_cpu[reports_cpu.len() / 2],
    }))
}
