//! `probe peers`: what the peers feature costs the daemon's periodic work
//! at a full peer table.
//!
//! - The retention record's save after a sweep, at a record of `--pairs`
//!   peers of which `--changed` changed (half moved in again, half new,
//!   and as many past retention dropped): the incremental save, against
//!   the full rewrite (delete everything, insert everything, one
//!   transaction) that it replaced, run on the same database in the same
//!   trial. Time and bytes handed to write(2) (`wchar`, WAL and checkpoint
//!   writes alike).
//! - The rate task's read every 2 s, with the peer table filled to
//!   `--pairs` over `--addresses` local addresses and the address map to
//!   `--addresses` entries: the counter snapshot and the inventory join,
//!   the distinct-peer count as it is now (`Peers::distinct`), and as it
//!   was (`Peers::list`, then a set of peers per address).

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr},
    os::fd::AsFd as _,
    path::Path,
    time::{Duration, Instant},
};

use aliasstat::{
    bpf::{
        counters::{PinnedMaps, ReadMethod},
        load, pins,
        sys::{self, batch_value_size},
    },
    inventory::{self, Config, HostTable},
    peers::{PairKey, Peers, Record, Remote, Retention, Totals, time},
};
use anyhow::{Context as _, Result, ensure};
use aya::maps::MapData;
use common::{
    Counters, Direction,
    names::{DEFAULT_ADDRESS_CAPACITY, PEERS},
    peer::{PeerCounts, PeerKey},
};
use lab::BpfDir;
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::thread_cpu;

/// The `i`th pair of `addresses` local addresses: local `10.a.b.c`
/// round-robin, peer `198.18.0.0/15` (benchmarking space) by rank.
fn pair(i: u32, addresses: u32) -> ([u8; 4], [u8; 4]) {
    let local = (u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i % addresses).to_be_bytes();
    let peer = (u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i / addresses).to_be_bytes();
    (local, peer)
}

fn pair_key(i: u32, addresses: u32) -> PairKey {
    let (local, peer) = pair(i, addresses);
    PairKey {
        interface: "eth0".into(),
        address: IpAddr::from(local),
        peer: Remote::full(IpAddr::from(peer)),
    }
}

/// A pair's totals, last seen at `last_ms`.
fn totals(i: u32, last_ms: u64) -> Totals {
    Totals {
        rx_packets: u64::from(i % 97) + 1,
        rx_bytes: (u64::from(i % 97) + 1) * 812,
        tx_packets: u64::from(i % 89) + 1,
        tx_bytes: (u64::from(i % 89) + 1) * 640,
        first_seen_ms: 1,
        last_seen_ms: last_ms,
    }
}

/// Bytes this thread has handed to write(2) so far.
fn written() -> Result<u64> {
    let io = std::fs::read_to_string("/proc/thread-self/io")?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .context("no wchar in /proc/thread-self/io")
}

/// Seconds and bytes written by `f`.
fn measured(f: impl FnOnce() -> Result<()>) -> Result<(f64, u64)> {
    let (before, started) = (written()?, Instant::now());
    f()?;
    Ok((started.elapsed().as_secs_f64(), written()? - before))
}

/// The record's save before incremental writes: the whole table replaced.
fn rewrite_all(db: &mut Connection, record: &Record) -> Result<()> {
    let tx = db.transaction()?;
    tx.execute("DELETE FROM peers", [])?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO peers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?;
        for (key, t) in record.entries() {
            insert.execute(params![
                key.interface,
                key.address.to_string(),
                key.peer.to_string(),
                t.rx_packets as i64,
                t.rx_bytes as i64,
                t.tx_packets as i64,
                t.tx_bytes as i64,
                t.first_seen_ms as i64,
                t.last_seen_ms as i64,
            ])?;
        }
    }
    Ok(tx.commit()?)
}

/// The record's save per sweep; see the module's comment.
pub fn record(
    dir: &Path,
    pairs: u32,
    addresses: u32,
    changed: u32,
    trials: usize,
) -> Result<Value> {
    let half = changed / 2;
    ensure!(
        half > 0 && trials > 0 && half * (trials as u32 + 1) < pairs,
        "--changed must be at least 2, and every trial's changes must fit in --pairs"
    );
    let mut record = Record::load(dir)?;
    // Pair n was last seen at n ms: expiring before a cut drops the oldest.
    for n in 0..pairs {
        record.add(pair_key(n, addresses), totals(n, u64::from(n)));
    }
    let (first_seconds, first_bytes) = measured(|| Ok(record.save()?))?;
    let mut db = Connection::open(dir.join(aliasstat::history::store::FILE))?;
    let (mut saves, mut rewrites) = (Vec::new(), Vec::new());
    for k in 0..trials as u32 {
        let now = u64::from(pairs + (k + 1) * half);
        for j in 0..half {
            // Back again: the newest pairs, spread out, seen now.
            let back = pairs + k * half - 1 - j * 7 % (pairs / 2);
            record.add(pair_key(back, addresses), totals(back, now));
            let new = pairs + k * half + j;
            record.add(pair_key(new, addresses), totals(new, u64::from(new)));
        }
        let cut = time::from_unix_ms(u64::from((k + 1) * half));
        ensure!(
            record.expire(cut) == half as usize,
            "the trial's expiry dropped another count than it added"
        );
        saves.push(measured(|| Ok(record.save()?))?);
        rewrites.push(measured(|| rewrite_all(&mut db, &record))?);
    }
    drop(db);
    let kept = record.entries().count();
    drop(record);
    ensure!(
        Record::load(dir)?.entries().count() == kept,
        "the database does not hold the record after the saves"
    );
    Ok(json!({
        "pairs": kept,
        "changed": changed,
        "deleted": half,
        "first_save_seconds": first_seconds,
        "first_save_bytes": first_bytes,
        "save_seconds": saves.iter().map(|s| s.0).collect::<Vec<_>>(),
        "save_bytes": saves.iter().map(|s| s.1).collect::<Vec<_>>(),
        "rewrite_seconds": rewrites.iter().map(|s| s.0).collect::<Vec<_>>(),
        "rewrite_bytes": rewrites.iter().map(|s| s.1).collect::<Vec<_>>(),
    }))
}

/// Fills the pinned peer table under `bpffs` with `pairs` pairs.
fn fill_peers(bpffs: &Path, pairs: u32, addresses: u32, ifindex: u32) -> Result<()> {
    let path = pins::maps_dir(bpffs, pins::LAYOUT_VERSION).join(PEERS);
    let map = MapData::from_pin(&path).with_context(|| format!("open {}", path.display()))?;
    const CHUNK: u32 = 16_384;
    let now = time::Clock::now().monotonic_ns;
    for at in (0..pairs).step_by(CHUNK as usize) {
        let range = at..pairs.min(at + CHUNK);
        let keys: Vec<PeerKey> = range
            .clone()
            .map(|i| {
                let (local, peer) = pair(i, addresses);
                PeerKey::ipv4(ifindex, local, peer, 32)
            })
            .collect();
        let values: Vec<PeerCounts> = range
            .map(|i| {
                PeerCounts::first(
                    Direction::Rx,
                    Counters::new(1, u64::from(i % 1400) + 60),
                    now,
                )
            })
            .collect();
        let written = sys::update_batch(
            map.fd().as_fd(),
            size_of::<PeerKey>(),
            batch_value_size(size_of::<PeerCounts>(), None),
            bytemuck::cast_slice(&keys),
            bytemuck::cast_slice(&values),
            0,
        )
        .with_context(|| format!("fill {}", path.display()))?;
        ensure!(
            written == keys.len(),
            "wrote {written} of {} pairs",
            keys.len()
        );
    }
    Ok(())
}

/// The distinct-peer count as the rate task took it before
/// `Peers::distinct`: the whole list, then a set per address.
fn distinct_by_list(
    peers: &Peers,
    host: &HostTable,
    config: &Config,
) -> Result<HashMap<IpAddr, usize>> {
    let mut by_address: HashMap<IpAddr, BTreeSet<Remote>> = HashMap::new();
    for a in peers.list(host, config)? {
        by_address
            .entry(a.address)
            .or_default()
            .extend(a.peers.iter().map(|p| p.peer));
    }
    Ok(by_address
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(address, p)| (address, p.len()))
        .collect())
}

/// The rate task's read; see the module's comment. Wall and thread CPU
/// seconds of each part, per trial.
pub fn rates(state_dir: &Path, pairs: u32, addresses: u32, trials: usize) -> Result<Value> {
    let pins = BpfDir::new("bench-peers")?;
    let _ebpf = load::load(pins.path(), DEFAULT_ADDRESS_CAPACITY)?;
    let ifindex = 1;
    fill_peers(pins.path(), pairs, addresses, ifindex)?;
    super::fill(
        pins.path().to_str().context("a UTF-8 pin path")?,
        addresses,
        ifindex,
    )?;
    let peers = Peers::open(
        pins.path(),
        Retention {
            idle: Duration::from_secs(900),
            keep: Duration::from_secs(30 * 86_400),
            state_dir: state_dir.to_owned(),
        },
    )?;
    let maps = PinnedMaps::open(pins.path())?;
    let (host, config) = (HostTable::default(), Config::default());
    let timed = |f: &mut dyn FnMut() -> Result<()>| -> Result<(f64, f64)> {
        let (started, cpu) = (Instant::now(), thread_cpu());
        f()?;
        Ok((started.elapsed().as_secs_f64(), thread_cpu() - cpu))
    };
    let mut parts: [(&str, Vec<(f64, f64)>); 4] = [
        ("snapshot", vec![]),
        ("join", vec![]),
        ("distinct", vec![]),
        ("list", vec![]),
    ];
    let (mut rows, mut now, mut before) = (0, HashMap::new(), HashMap::new());
    for _ in 0..trials {
        let mut snap = None;
        parts[0].1.push(timed(&mut || {
            snap = Some(maps.snapshot_by(ReadMethod::Batched)?);
            Ok(())
        })?);
        let snap = snap.context("a snapshot")?;
        parts[1].1.push(timed(&mut || {
            rows = inventory::rows(&host, &config, &snap).len();
            Ok(())
        })?);
        parts[2].1.push(timed(&mut || {
            now = peers.distinct()?;
            Ok(())
        })?);
        parts[3].1.push(timed(&mut || {
            before = distinct_by_list(&peers, &host, &config)?;
            Ok(())
        })?);
    }
    ensure!(now == before, "the two distinct-peer counts differ");
    ensure!(
        now.values().sum::<usize>() == pairs as usize,
        "the count saw {} pairs of {pairs}",
        now.values().sum::<usize>()
    );
    let parts: serde_json::Map<String, Value> = parts
        .iter()
        .map(|(name, t)| {
            let wall: Vec<f64> = t.iter().map(|t| t.0).collect();
            let cpu: Vec<f64> = t.iter().map(|t| t.1).collect();
            ((*name).to_owned(), json!({ "wall": wall, "cpu": cpu }))
        })
        .collect();
    Ok(json!({ "pairs": pairs, "addresses": addresses, "rows": rows, "parts": parts }))
}
