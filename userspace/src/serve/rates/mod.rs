//! The last minutes of every address's rates, kept in the daemon's memory
//! for the web page's per-row charts and served as `/api/v1/rates`.
//!
//! While someone watches (asked for `/api/v1/rates` within the last
//! [`WATCH`]), a task reads the joined inventory every [`INTERVAL`] and
//! keeps, per address, the rates of the last [`DEPTH`] intervals. Rates
//! are taken between two readings with top's reset-aware arithmetic, so
//! the page and `aliasstat top` never disagree. Nobody watching costs
//! nothing: no map reads, and the points are dropped. Watching costs one
//! read of the maps per interval (about 7 ms at 10k addresses) and 16
//! bytes per point, [`DEPTH`] points per address (1.4 KiB), 14 MiB at 10k
//! addresses; an address that leaves the inventory leaves the history
//! with it.

pub mod query;

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime},
};

use log::{info, warn};
use tokio::sync::Notify;

use crate::{
    daemon::Live,
    inventory::Row,
    top::{
        client::Entry,
        state::{Attention, Rates, Sample, lines},
    },
};

/// Between two readings: the page refreshes at this pace.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// Points kept per address: three minutes at [`INTERVAL`].
pub const DEPTH: usize = 90;
/// Sampling goes on this long after the last request: as long as a chart
/// spans, so that a page in a background tab, which browsers let poll only
/// once a minute, keeps its charts.
pub const WATCH: Duration = Duration::from_secs(INTERVAL.as_secs() * DEPTH as u64);
/// How long the first request after a quiet spell waits for the first
/// reading, rather than answer with an empty table.
const FIRST_READING: Duration = Duration::from_secs(10);

/// One interval's rates of one address, per second. f32 keeps a point at
/// 16 bytes; its 24-bit mantissa is finer than any rate shown.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub rx_bits: f32,
    pub rx_packets: f32,
    pub tx_bits: f32,
    pub tx_packets: f32,
}

impl From<Rates> for Point {
    fn from(r: Rates) -> Self {
        Self {
            rx_bits: r.rx.bits as f32,
            rx_packets: r.rx.packets as f32,
            tx_bits: r.tx.bits as f32,
            tx_packets: r.tx.packets as f32,
        }
    }
}

/// An address as last read, with its rates and their recent past.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub row: Row,
    /// The last interval's rates; None until two readings exist.
    pub rates: Option<Rates>,
    pub attention: Option<Attention>,
    /// Oldest first, at most [`DEPTH`].
    pub points: VecDeque<Point>,
    /// The end of the last interval that carried a packet, since the
    /// daemon started.
    pub last_traffic: Option<SystemTime>,
    /// Distinct peers; None with `--peers off` or when the peers could not
    /// be read.
    pub peers: Option<usize>,
}

/// The peers feature's answer at a reading.
#[derive(Clone, Debug, Default)]
pub enum PeerCounts {
    /// `--peers off`.
    #[default]
    Off,
    /// The peer maps could not be read (logged).
    Unread,
    /// Distinct peers per address; an address missing has none.
    Counted(HashMap<IpAddr, usize>),
}

impl PeerCounts {
    /// Counted from the same maps and record `/api/v1/peers` lists, without
    /// building that list (BENCHMARKS.md, "Peers at a full table").
    pub fn read(live: &Live) -> Self {
        let Some(peers) = live.peers() else {
            return Self::Off;
        };
        match peers.distinct() {
            Ok(counts) => Self::Counted(counts),
            Err(e) => {
                warn!("rate history: peers: {e}");
                Self::Unread
            }
        }
    }

    fn of(&self, address: IpAddr) -> Option<usize> {
        match self {
            Self::Off | Self::Unread => None,
            Self::Counted(counts) => Some(counts.get(&address).copied().unwrap_or(0)),
        }
    }
}

/// The newest reading, for the endpoint to page through.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub rows: Vec<Tracked>,
    /// Entries of the address map at that reading.
    /// Entries of each address map, in [`crate::bpf::load::ADDRESS_MAPS`] order.
    pub entries: [usize; 2],
    /// When it was taken; None before the first.
    pub at: Option<SystemTime>,
    /// False with `--peers off`.
    pub peer_tracking: bool,
}

/// Every address's recent rates. State stays behind these methods: the
/// sampler records, the endpoint reads a consistent copy.
#[derive(Default)]
pub struct History {
    inner: Mutex<Inner>,
    /// Wakes the sampler when a request finds it asleep.
    wake: Notify,
    /// Tells the requests that woke it that a reading exists.
    recorded: Notify,
}

#[derive(Default)]
struct Inner {
    previous: Option<Sample>,
    table: Arc<Table>,
    /// The last request's time.
    asked: Option<Instant>,
}

impl History {
    /// The newest reading; cheap, so a request never holds the lock.
    pub fn table(&self) -> Arc<Table> {
        self.lock().table.clone()
    }

    /// The newest reading for a request, which keeps the sampler going for
    /// another [`WATCH`]. After a quiet spell it wakes the sampler and
    /// waits (up to [`FIRST_READING`]) for its first reading.
    pub async fn watch(&self) -> Arc<Table> {
        let recorded = self.recorded.notified();
        tokio::pin!(recorded);
        // Registered before the check, so a reading that lands between the
        // check and the wait still ends the wait.
        recorded.as_mut().enable();
        let table = {
            let mut inner = self.lock();
            inner.asked = Some(Instant::now());
            inner.table.clone()
        };
        if table.at.is_some() {
            return table;
        }
        self.wake.notify_one();
        // On a timeout the table is empty, and says so (no `read_at`).
        let _ = tokio::time::timeout(FIRST_READING, recorded).await;
        self.table()
    }

    fn watched(&self, now: Instant) -> bool {
        self.lock()
            .asked
            .is_some_and(|asked| now.saturating_duration_since(asked) < WATCH)
    }

    /// Drops the points and the last reading: the next watcher starts
    /// afresh, and the memory goes back.
    fn forget(&self) {
        let mut inner = self.lock();
        inner.previous = None;
        inner.table = Arc::default();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a reading taken at `at` (monotonic, for the rates) and `wall`
    /// (for "last traffic").
    pub fn record(
        &self,
        rows: Vec<Row>,
        entries: [usize; 2],
        peers: &PeerCounts,
        at: Instant,
        wall: SystemTime,
    ) {
        let now = Sample {
            at,
            entries: rows.iter().map(Entry::from).collect(),
        };
        let mut inner = self.lock();
        // The points move to the new table; they are copied only while a
        // request still holds the old one.
        let old = Arc::try_unwrap(std::mem::take(&mut inner.table))
            .unwrap_or_else(|shared| (*shared).clone());
        let mut past: HashMap<IpAddr, (VecDeque<Point>, Option<SystemTime>)> = old
            .rows
            .into_iter()
            .map(|t| (t.row.address, (t.points, t.last_traffic)))
            .collect();
        let lines = lines(inner.previous.as_ref(), &now);
        let tracked = rows
            .into_iter()
            .zip(lines)
            .map(|(row, line)| {
                let (mut points, mut last_traffic) = past.remove(&row.address).unwrap_or_default();
                if let Some(r) = line.rates {
                    if points.len() == DEPTH {
                        points.pop_front();
                    }
                    points.push_back(Point::from(r));
                    if r.rx.packets > 0.0 || r.tx.packets > 0.0 {
                        last_traffic = Some(wall);
                    }
                }
                Tracked {
                    attention: line.attention(),
                    rates: line.rates,
                    peers: peers.of(row.address),
                    row,
                    points,
                    last_traffic,
                }
            })
            .collect();
        inner.table = Arc::new(Table {
            rows: tracked,
            entries,
            at: Some(wall),
            peer_tracking: !matches!(peers, PeerCounts::Off),
        });
        inner.previous = Some(now);
    }
}

/// Reads the inventory every [`INTERVAL`] into `history` while someone
/// watches, and sleeps while nobody does. A failed read is logged and
/// leaves a gap: the next interval's rates then span both.
pub async fn sample(live: Arc<Live>, history: Arc<History>) {
    loop {
        history.wake.notified().await;
        info!("rate history: someone is watching; reading every {INTERVAL:?}");
        watched(&live, &history).await;
        history.forget();
        info!("rate history: nobody watched for {WATCH:?}; stopped reading");
    }
}

/// One spell of watching: returns when the last request is [`WATCH`] old.
async fn watched(live: &Arc<Live>, history: &History) {
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !history.watched(Instant::now()) {
            return;
        }
        let live = live.clone();
        // The join reads the maps: off the runtime thread.
        let read = tokio::task::spawn_blocking(move || {
            let read = live.rows_and_entries();
            let peers = PeerCounts::read(&live);
            (read, peers, Instant::now(), SystemTime::now())
        })
        .await;
        match read {
            Ok((Ok((rows, entries)), peers, at, wall)) => {
                history.record(rows, entries, &peers, at, wall);
            }
            Ok((Err(e), ..)) => warn!("rate history: {e}"),
            Err(e) => warn!("rate history: the read did not finish: {e}"),
        }
        // Also after a failure: the waiting request answers, empty.
        history.recorded.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use common::Counters;

    use super::*;
    use crate::inventory::State;

    pub(crate) fn row(address: &str, state: State, rx: u64, tx: u64) -> Row {
        Row {
            address: address.parse().unwrap(),
            state,
            interface: Some("eth0".into()),
            label: None,
            prefix_len: None,
            scope: None,
            flags: vec![],
            alias: None,
            owner: None,
            purpose: None,
            rx: Counters::new(rx, rx * 100),
            tx: Counters::new(tx, tx * 100),
            seen_on: vec![],
        }
    }

    #[test]
    fn keeps_the_last_depth_rates_and_forgets_addresses_that_left() {
        let history = History::default();
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let step = |s: u64| wall + Duration::from_secs(s);
        history.record(
            vec![row("192.0.2.1", State::Undocumented, 0, 0)],
            [1, 0],
            &PeerCounts::Off,
            at(0),
            step(0),
        );
        assert_eq!(history.table().rows[0].rates, None);
        for i in 1..=DEPTH as u64 + 5 {
            // 10 packets (1000 bytes) more every 2 s: 5 pkt/s, 4000 bit/s.
            let rows = vec![
                row("192.0.2.1", State::Undocumented, 10 * i, 0),
                row("192.0.2.2", State::Documented, 0, 0),
            ];
            history.record(rows, [2, 0], &PeerCounts::Off, at(2 * i), step(2 * i));
        }
        let table = history.table();
        let busy = &table.rows[0];
        assert_eq!(busy.points.len(), DEPTH);
        assert_eq!(
            busy.points.back(),
            Some(&Point {
                rx_bits: 4000.0,
                rx_packets: 5.0,
                tx_bits: 0.0,
                tx_packets: 0.0
            })
        );
        assert_eq!(busy.attention, Some(Attention::Undocumented));
        assert_eq!(busy.last_traffic, Some(step(2 * (DEPTH as u64 + 5))));
        assert_eq!(table.rows[1].last_traffic, None);
        assert_eq!(table.entries, [2, 0]);

        history.record(
            vec![row("192.0.2.2", State::Documented, 0, 0)],
            [1, 0],
            &PeerCounts::Off,
            at(999),
            step(999),
        );
        let table = history.table();
        assert_eq!(table.rows.len(), 1);
        assert_eq!(table.rows[0].row.address.to_string(), "192.0.2.2");
        assert_eq!(table.rows[0].points.len(), DEPTH);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_request_keeps_the_sampler_going_for_watch_and_forgetting_frees_the_table() {
        let history = History::default();
        let rows = || vec![row("192.0.2.1", State::Documented, 0, 0)];
        assert!(!history.watched(Instant::now()));
        history.record(
            rows(),
            [1, 0],
            &PeerCounts::Off,
            Instant::now(),
            SystemTime::UNIX_EPOCH,
        );
        // A reading exists, so the request does not wait for one.
        let table = history.watch().await;
        assert_eq!(table.rows.len(), 1);
        let asked = Instant::now();
        assert!(history.watched(asked + WATCH - Duration::from_secs(1)));
        assert!(!history.watched(asked + WATCH));
        history.forget();
        assert_eq!(history.table().rows.len(), 0);
        assert_eq!(history.table().at, None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_first_request_after_a_quiet_spell_waits_for_the_first_reading() {
        let history = Arc::new(History::default());
        let sampler = {
            let history = history.clone();
            tokio::spawn(async move {
                history.wake.notified().await;
                let rows = vec![row("192.0.2.1", State::Documented, 0, 0)];
                history.record(
                    rows,
                    [1, 0],
                    &PeerCounts::Off,
                    Instant::now(),
                    SystemTime::UNIX_EPOCH,
                );
                history.recorded.notify_waiters();
            })
        };
        assert_eq!(history.watch().await.rows.len(), 1);
        sampler.await.unwrap();
    }

    #[test]
    fn a_counter_that_went_backwards_is_no_spike() {
        let history = History::default();
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        history.record(
            vec![row("192.0.2.1", State::Documented, 1000, 0)],
            [1, 0],
            &PeerCounts::Off,
            t0,
            wall,
        );
        let later = t0 + INTERVAL;
        history.record(
            vec![row("192.0.2.1", State::Documented, 10, 0)],
            [1, 0],
            &PeerCounts::Off,
            later,
            wall,
        );
        assert_eq!(history.table().rows[0].points[0], Point::default());
    }
}
