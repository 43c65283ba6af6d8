//! Everything `aliasstat top` knows and does, without a terminal: samples
//! and the rates between them, sorting, the filter, and what each key does.
//! Rendering reads this; nothing here draws, sleeps or reads a clock.

use std::{
    cmp::Ordering,
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    time::{Duration, Instant},
};

use common::Counters;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Serialize;

use super::{
    client::{Attached, Entry},
    peers::{Drill, Pane, PeerSample},
    services::ServicesRead,
};
use crate::inventory::State;

/// The rows of `/api/v1/aliases` at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    pub at: Instant,
    pub entries: Vec<Entry>,
}

/// Per-second rates in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rate {
    pub bits: f64,
    pub packets: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Rates {
    pub rx: Rate,
    pub tx: Rate,
}

/// The per-second rate of a counter that read `before` and, `elapsed`
/// later, `now`.
///
/// A counter that went backwards gives 0, not `now / elapsed`: the kernel's
/// counters only grow, so a drop means counts went away (the pinned maps
/// were re-created, or the interface an address was also counted on left
/// and took its share of the sum with it). What is left is not traffic of
/// this interval, and counting it as such would show an absurd spike; the
/// next interval, measured from the new value, is right again.
pub fn per_second(before: u64, now: u64, elapsed: Duration) -> f64 {
    if now < before || elapsed.is_zero() {
        return 0.0;
    }
    (now - before) as f64 / elapsed.as_secs_f64()
}

pub(crate) fn rate(before: Counters, now: Counters, elapsed: Duration) -> Rate {
    Rate {
        bits: per_second(before.bytes, now.bytes, elapsed) * 8.0,
        packets: per_second(before.packets, now.packets, elapsed),
    }
}

/// The rx and tx counts of one reading of a list (the drill-down's peers
/// or services), by key: what the next reading's rates are taken against.
#[derive(Clone, Debug)]
pub(crate) struct Baseline<K> {
    at: Instant,
    counts: HashMap<K, (Counters, Counters)>,
}

impl<K: Eq + Hash> Baseline<K> {
    pub fn new(at: Instant, counts: impl IntoIterator<Item = (K, (Counters, Counters))>) -> Self {
        Self {
            at,
            counts: counts.into_iter().collect(),
        }
    }

    /// The rates of `key`, read as `(rx, tx)` at `at`. A key this reading
    /// lacks starts from zero, as an address does in [`rates`].
    pub fn rates(&self, at: Instant, key: &K, (rx, tx): (Counters, Counters)) -> Rates {
        let elapsed = at.saturating_duration_since(self.at);
        let (rx0, tx0) = self.counts.get(key).copied().unwrap_or_default();
        Rates {
            rx: rate(rx0, rx, elapsed),
            tx: rate(tx0, tx, elapsed),
        }
    }
}

/// The rates of one address between two readings of it. An address that
/// the earlier sample lacks starts from zero: the daemon lists every
/// address it has counted, so one it did not list had no counts then.
pub fn rates(before: Option<&Entry>, now: &Entry, elapsed: Duration) -> Rates {
    let (rx, tx) = before.map_or_else(Default::default, |b| (b.rx, b.tx));
    Rates {
        rx: rate(rx, now.rx, elapsed),
        tx: rate(tx, now.tx, elapsed),
    }
}

/// One row on the screen: an address as last read, and its rates.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub entry: Entry,
    /// None until there are two samples to take a difference of.
    pub rates: Option<Rates>,
}

/// The rows of `now`, with rates since `before`. Addresses that `now`
/// lacks are gone and have no row.
pub fn lines(before: Option<&Sample>, now: &Sample) -> Vec<Line> {
    let previous: Option<(HashMap<IpAddr, &Entry>, Duration)> = before.map(|b| {
        let by_address = b.entries.iter().map(|e| (e.address, e)).collect();
        (by_address, now.at.saturating_duration_since(b.at))
    });
    now.entries
        .iter()
        .map(|entry| Line {
            entry: entry.clone(),
            rates: previous.as_ref().map(|(by_address, elapsed)| {
                rates(by_address.get(&entry.address).copied(), entry, *elapsed)
            }),
        })
        .collect()
}

/// The sum of every row's rates, or None before rates are known.
pub fn totals(lines: &[Line]) -> Option<Rates> {
    lines.iter().filter_map(|l| l.rates).reduce(|a, b| Rates {
        rx: Rate {
            bits: a.rx.bits + b.rx.bits,
            packets: a.rx.packets + b.rx.packets,
        },
        tx: Rate {
            bits: a.tx.bits + b.tx.bits,
            packets: a.tx.packets + b.tx.packets,
        },
    })
}

/// Why a row stands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attention {
    /// An address nobody documented is carrying traffic.
    Undocumented,
    /// Traffic arrives for an address this host does not hold: an absent
    /// alias (the peer should have it) or a foreign one.
    NotHere,
}

impl Line {
    /// The alias, or the address when it has none.
    pub fn name(&self) -> String {
        self.entry
            .alias
            .clone()
            .unwrap_or_else(|| self.entry.address.to_string())
    }

    pub fn attention(&self) -> Option<Attention> {
        let r = self.rates?;
        let rx = r.rx.packets > 0.0;
        match self.entry.state {
            State::Undocumented if rx || r.tx.packets > 0.0 => Some(Attention::Undocumented),
            State::Absent | State::Foreign if rx => Some(Attention::NotHere),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Rx,
    Tx,
    Total,
    Name,
}

impl Sort {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rx => "rx",
            Self::Tx => "tx",
            Self::Total => "total",
            Self::Name => "name",
        }
    }
}

/// What the rate columns count: bits (and bytes for totals) or packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bits,
    Packets,
}

/// How rows are chosen and ordered; shared by the screen and `--once`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub sort: Sort,
    /// Rates sort largest first and names A to Z; this turns either round.
    pub reverse: bool,
    pub unit: Unit,
    /// Case-insensitive text that a row's name, address, interface, state
    /// or owner must contain; empty shows every row.
    pub filter: String,
}

impl Default for View {
    fn default() -> Self {
        Self {
            sort: Sort::Total,
            reverse: false,
            unit: Unit::Bits,
            filter: String::new(),
        }
    }
}

impl View {
    fn matches(&self, line: &Line) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        let e = &line.entry;
        [
            e.alias.as_deref(),
            Some(&e.address.to_string()),
            e.interface.as_deref(),
            Some(e.state.as_str()),
            e.owner.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(&needle))
    }

    fn metric(&self, r: Rate) -> f64 {
        match self.unit {
            Unit::Bits => r.bits,
            Unit::Packets => r.packets,
        }
    }

    /// The sort value of a rate column; unknown rates count as 0.
    fn key(&self, line: &Line) -> f64 {
        let r = line.rates.unwrap_or_default();
        match self.sort {
            Sort::Rx => self.metric(r.rx),
            Sort::Tx => self.metric(r.tx),
            Sort::Total | Sort::Name => self.metric(r.rx) + self.metric(r.tx),
        }
    }

    /// Named rows first, then bare addresses in address order.
    fn by_name(a: &Line, b: &Line) -> Ordering {
        let key = |l: &Line| {
            (
                l.entry.alias.is_none(),
                l.entry.alias.as_deref().map(str::to_lowercase),
                l.entry.address,
            )
        };
        key(a).cmp(&key(b))
    }

    /// The rows to show, in order. Ties in a rate keep name order, so rows
    /// do not swap places between refreshes.
    pub fn apply<'a>(&self, lines: &'a [Line]) -> Vec<&'a Line> {
        let mut shown: Vec<&Line> = lines.iter().filter(|l| self.matches(l)).collect();
        shown.sort_by(|a, b| {
            let order = match self.sort {
                Sort::Name => Ordering::Equal,
                _ => self.key(b).total_cmp(&self.key(a)),
            };
            let order = order.then_with(|| Self::by_name(a, b));
            if self.reverse { order.reverse() } else { order }
        });
        shown
    }
}

/// Which screen has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Table,
    /// Typing the filter after `/`.
    Filter,
    Help,
    /// The peers of one address (Enter on its row), or its services
    /// (`s` there); Esc returns.
    Peers,
}

/// How the last request to the daemon went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Up,
    /// The last `failures` requests failed, the latest with `error`.
    Down {
        error: String,
        failures: u32,
    },
}

/// What the header says about the daemon being watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The daemon's host: this host's name for a loopback URL.
    pub host: String,
    pub url: String,
    pub interval: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// The whole state of the interactive screen.
#[derive(Debug)]
pub struct Top {
    pub source: Source,
    /// None until `/api/v1/status` has been read.
    pub attachments: Option<Vec<Attached>>,
    pub view: View,
    pub mode: Mode,
    pub link: Link,
    last: Option<Sample>,
    latest: Vec<Line>,
    /// The rows as they were when `p` was pressed; sampling goes on
    /// underneath so that resuming shows fresh rates at once.
    frozen: Option<Vec<Line>>,
    /// The highlighted row, an index into [`Top::shown`].
    pub selected: usize,
    /// The drill-down, while [`Mode::Peers`] is on.
    pub drill: Option<Drill>,
}

impl Top {
    pub fn new(source: Source) -> Self {
        Self {
            source,
            attachments: None,
            view: View::default(),
            mode: Mode::Table,
            link: Link::Connecting,
            last: None,
            latest: Vec::new(),
            frozen: None,
            selected: 0,
            drill: None,
        }
    }

    /// The address whose peers or services the sampler should read, if any.
    pub fn watching(&self) -> Option<(IpAddr, Pane)> {
        self.drill.as_ref().map(|d| (d.address, d.pane))
    }

    /// A reading of the drilled-down address's peers.
    pub fn on_peers(&mut self, sample: Result<PeerSample, String>) {
        if let Some(drill) = self.drill.as_mut() {
            drill.on_sample(sample);
        }
    }

    /// A reading of the drilled-down address's services.
    pub fn on_services(&mut self, read: ServicesRead) {
        if let Some(drill) = self.drill.as_mut() {
            drill.services.on_read(read);
        }
    }

    /// Opens the peers of the highlighted row.
    fn open_peers(&mut self) {
        let shown = self.shown();
        let Some(line) = shown.get(self.selected.min(shown.len().saturating_sub(1))) else {
            return;
        };
        self.drill = Some(Drill::new(line.entry.address, line.name()));
        self.mode = Mode::Peers;
    }

    /// Takes a new reading. A failed one keeps the last good sample, so
    /// that once the daemon answers again the rates cover the whole gap.
    pub fn on_sample(&mut self, sample: Result<Sample, String>) {
        match sample {
            Ok(sample) => {
                self.latest = lines(self.last.as_ref(), &sample);
                self.last = Some(sample);
                self.link = Link::Up;
            }
            Err(error) => {
                let failures = match &self.link {
                    Link::Down { failures, .. } => failures + 1,
                    _ => 1,
                };
                self.link = Link::Down { error, failures };
            }
        }
    }

    pub fn on_attachments(&mut self, attachments: Vec<Attached>) {
        self.attachments = Some(attachments);
    }

    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// Every row, filtered or not, as currently displayed.
    pub fn lines(&self) -> &[Line] {
        self.frozen.as_deref().unwrap_or(&self.latest)
    }

    pub fn shown(&self) -> Vec<&Line> {
        self.view.apply(self.lines())
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Flow {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Flow::Quit;
        }
        match self.mode {
            Mode::Filter => match key.code {
                KeyCode::Enter => self.mode = Mode::Table,
                KeyCode::Esc => {
                    self.view.filter.clear();
                    self.mode = Mode::Table;
                }
                KeyCode::Backspace => {
                    self.view.filter.pop();
                }
                KeyCode::Char(c) => self.view.filter.push(c),
                _ => {}
            },
            Mode::Help => match key.code {
                KeyCode::Char('q') => return Flow::Quit,
                _ => self.mode = Mode::Table,
            },
            Mode::Peers => match key.code {
                KeyCode::Char('q') => return Flow::Quit,
                KeyCode::Esc | KeyCode::Backspace => {
                    self.drill = None;
                    self.mode = Mode::Table;
                }
                KeyCode::Char('s') => {
                    if let Some(drill) = self.drill.as_mut() {
                        drill.switch_pane();
                    }
                }
                _ => {}
            },
            Mode::Table => match key.code {
                KeyCode::Char('q') => return Flow::Quit,
                KeyCode::Char('?' | 'h') => self.mode = Mode::Help,
                KeyCode::Char('r') => self.sort_by(Sort::Rx),
                KeyCode::Char('t') => self.sort_by(Sort::Tx),
                KeyCode::Char('a') => self.sort_by(Sort::Total),
                KeyCode::Char('n') => self.sort_by(Sort::Name),
                KeyCode::Char('i') => self.view.reverse = !self.view.reverse,
                KeyCode::Char('b') => {
                    self.view.unit = match self.view.unit {
                        Unit::Bits => Unit::Packets,
                        Unit::Packets => Unit::Bits,
                    }
                }
                KeyCode::Char('p' | ' ') => {
                    self.frozen = match self.frozen {
                        Some(_) => None,
                        None => Some(self.latest.clone()),
                    }
                }
                KeyCode::Char('/') => self.mode = Mode::Filter,
                KeyCode::Esc => self.view.filter.clear(),
                KeyCode::Down | KeyCode::Char('j') => {
                    let last = self.shown().len().saturating_sub(1);
                    self.selected = (self.selected + 1).min(last);
                }
                KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
                KeyCode::Enter => self.open_peers(),
                _ => {}
            },
        }
        Flow::Continue
    }

    /// A new sort column starts in its natural order.
    fn sort_by(&mut self, sort: Sort) {
        self.view.sort = sort;
        self.view.reverse = false;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn entry(
        address: &str,
        alias: Option<&str>,
        state: State,
        rx: (u64, u64),
        tx: (u64, u64),
    ) -> Entry {
        Entry {
            address: address.parse().unwrap(),
            state,
            interface: Some("eth0".into()),
            alias: alias.map(Into::into),
            owner: alias.map(|a| format!("team-{a}")),
            rx: Counters::new(rx.0, rx.1),
            tx: Counters::new(tx.0, tx.1),
        }
    }

    #[test]
    fn per_second_cases() {
        let s = Duration::from_secs;
        let cases = [
            // (before, now, elapsed, rate)
            (100, 300, s(2), 100.0),
            (0, 0, s(1), 0.0),
            (7, 7, s(1), 0.0),
            // Went backwards: a reset, not a huge wrapped-around delta.
            (1_000_000, 10, s(1), 0.0),
            (u64::MAX, 0, s(1), 0.0),
            // No time passed: no rate rather than infinity.
            (0, 50, Duration::ZERO, 0.0),
            (0, 50, Duration::from_millis(500), 100.0),
        ];
        for (before, now, elapsed, want) in cases {
            assert_eq!(
                per_second(before, now, elapsed),
                want,
                "{before} → {now} in {elapsed:?}"
            );
        }
    }

    #[test]
    fn rates_in_bits_and_packets() {
        let before = entry("192.0.2.1", None, State::Undocumented, (10, 1000), (0, 0));
        let now = entry("192.0.2.1", None, State::Undocumented, (30, 3000), (5, 500));
        assert_eq!(
            rates(Some(&before), &now, Duration::from_secs(2)),
            Rates {
                rx: Rate {
                    bits: 8000.0,
                    packets: 10.0
                },
                tx: Rate {
                    bits: 2000.0,
                    packets: 2.5
                },
            }
        );
    }

    #[test]
    fn new_gone_reset_and_first_rows() {
        let t0 = Instant::now();
        let first = Sample {
            at: t0,
            entries: vec![
                entry(
                    "192.0.2.1",
                    Some("web"),
                    State::Documented,
                    (100, 10_000),
                    (0, 0),
                ),
                entry(
                    "192.0.2.2",
                    Some("gone"),
                    State::Documented,
                    (5, 500),
                    (0, 0),
                ),
                entry(
                    "192.0.2.3",
                    Some("reset"),
                    State::Documented,
                    (900, 90_000),
                    (9, 900),
                ),
            ],
        };
        let second = Sample {
            at: t0 + Duration::from_secs(1),
            entries: vec![
                entry(
                    "192.0.2.1",
                    Some("web"),
                    State::Documented,
                    (150, 15_000),
                    (0, 0),
                ),
                entry(
                    "192.0.2.3",
                    Some("reset"),
                    State::Documented,
                    (4, 400),
                    (10, 1000),
                ),
                entry(
                    "192.0.2.4",
                    Some("new"),
                    State::Documented,
                    (20, 2000),
                    (0, 0),
                ),
            ],
        };

        // One sample: rows, no rates yet.
        let only = lines(None, &first);
        assert_eq!(only.len(), 3);
        assert!(only.iter().all(|l| l.rates.is_none()));
        assert_eq!(totals(&only), None);

        let got = lines(Some(&first), &second);
        let brief: Vec<(String, Rate, Rate)> = got
            .iter()
            .map(|l| {
                let r = l.rates.unwrap();
                (l.name(), r.rx, r.tx)
            })
            .collect();
        let r = |packets: f64, bytes: f64| Rate {
            bits: bytes * 8.0,
            packets,
        };
        assert_eq!(
            brief,
            [
                ("web".into(), r(50.0, 5000.0), r(0.0, 0.0)),
                // rx went backwards: 0; tx kept growing: its rate stands.
                ("reset".into(), r(0.0, 0.0), r(1.0, 100.0)),
                // Not listed before: counted from zero.
                ("new".into(), r(20.0, 2000.0), r(0.0, 0.0)),
            ]
        );
        // "gone" has no row any more.
        assert_eq!(
            totals(&got),
            Some(Rates {
                rx: r(70.0, 7000.0),
                tx: r(1.0, 100.0)
            })
        );
    }

    #[test]
    fn a_failed_sample_keeps_the_baseline() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut top = Top::new(Source {
            host: "h".into(),
            url: "u".into(),
            interval: Duration::from_secs(1),
        });
        let sample = |s, packets| Sample {
            at: at(s),
            entries: vec![entry(
                "192.0.2.1",
                Some("web"),
                State::Documented,
                (packets, packets * 100),
                (0, 0),
            )],
        };
        top.on_sample(Ok(sample(0, 0)));
        assert_eq!(top.link, Link::Up);
        top.on_sample(Err("refused".into()));
        top.on_sample(Err("refused again".into()));
        assert_eq!(
            top.link,
            Link::Down {
                error: "refused again".into(),
                failures: 2
            }
        );
        // The last rows stay on screen while the daemon is away.
        assert_eq!(top.lines().len(), 1);
        top.on_sample(Ok(sample(4, 400)));
        assert_eq!(top.link, Link::Up);
        assert_eq!(top.lines()[0].rates.unwrap().rx.packets, 100.0);
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn names(top: &Top) -> Vec<String> {
        top.shown().iter().map(|l| l.name()).collect()
    }

    fn sampled() -> Top {
        let t0 = Instant::now();
        let mut top = Top::new(Source {
            host: "h".into(),
            url: "u".into(),
            interval: Duration::from_secs(1),
        });
        let rows = |k: u64| {
            vec![
                // Many small packets in, few big ones out.
                entry(
                    "192.0.2.1",
                    Some("dns"),
                    State::Documented,
                    (k * 100, k * 6400),
                    (k * 100, k * 12_800),
                ),
                entry(
                    "192.0.2.2",
                    Some("web"),
                    State::Documented,
                    (k * 10, k * 15_000),
                    (k * 10, k * 15_000),
                ),
                entry(
                    "192.0.2.9",
                    None,
                    State::Undocumented,
                    (k * 50, k * 5000),
                    (0, 0),
                ),
                entry("192.0.2.255", None, State::Foreign, (0, 0), (0, 0)),
            ]
        };
        for k in 0..2 {
            top.on_sample(Ok(Sample {
                at: t0 + Duration::from_secs(k),
                entries: rows(k),
            }));
        }
        top
    }

    #[test]
    fn keys_sort_reverse_and_toggle_units() {
        let mut top = sampled();
        // Total bits: web 240k, dns 153.6k, undocumented 40k, foreign 0.
        assert_eq!(names(&top), ["web", "dns", "192.0.2.9", "192.0.2.255"]);
        top.on_key(key('r'));
        assert_eq!(names(&top), ["web", "dns", "192.0.2.9", "192.0.2.255"]);
        top.on_key(key('b'));
        assert_eq!(top.view.unit, Unit::Packets);
        assert_eq!(names(&top), ["dns", "192.0.2.9", "web", "192.0.2.255"]);
        top.on_key(key('i'));
        assert_eq!(names(&top), ["192.0.2.255", "web", "192.0.2.9", "dns"]);
        // A new column starts in its natural order again.
        top.on_key(key('n'));
        assert!(!top.view.reverse);
        assert_eq!(names(&top), ["dns", "web", "192.0.2.9", "192.0.2.255"]);
        top.on_key(key('t'));
        assert_eq!(names(&top), ["dns", "web", "192.0.2.9", "192.0.2.255"]);
        top.on_key(key('a'));
        assert_eq!(top.view.sort, Sort::Total);
        assert_eq!(top.on_key(key('q')), Flow::Quit);
        assert_eq!(
            top.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Flow::Quit
        );
    }

    #[test]
    fn filter_is_typed_after_a_slash() {
        let mut top = sampled();
        top.on_key(key('/'));
        assert_eq!(top.mode, Mode::Filter);
        for c in "UNDOCx".chars() {
            top.on_key(key(c));
        }
        // Typed letters go to the filter, not to the sort keys.
        assert_eq!(top.view.sort, Sort::Total);
        assert!(names(&top).is_empty());
        top.on_key(KeyEvent::from(KeyCode::Backspace));
        top.on_key(KeyEvent::from(KeyCode::Enter));
        assert_eq!(top.mode, Mode::Table);
        assert_eq!(names(&top), ["192.0.2.9"]);
        // Owner and address match too.
        top.view.filter = "team-w".into();
        assert_eq!(names(&top), ["web"]);
        top.view.filter = ".255".into();
        assert_eq!(names(&top), ["192.0.2.255"]);
        top.on_key(KeyEvent::from(KeyCode::Esc));
        assert_eq!(names(&top).len(), 4);
    }

    #[test]
    fn pause_freezes_the_rows_not_the_sampling() {
        let mut top = sampled();
        let before = top.lines().to_vec();
        top.on_key(key('p'));
        assert!(top.paused());
        top.on_sample(Ok(Sample {
            at: Instant::now() + Duration::from_secs(60),
            entries: vec![],
        }));
        assert_eq!(top.lines(), before);
        top.on_key(key('p'));
        assert!(top.lines().is_empty());
    }

    #[test]
    fn enter_opens_the_peers_of_the_highlighted_row_and_esc_returns() {
        let mut top = sampled();
        let first = top.shown()[0].entry.address;
        let second = top.shown()[1].entry.address;
        top.on_key(KeyEvent::from(KeyCode::Down));
        top.on_key(KeyEvent::from(KeyCode::Enter));
        assert_eq!(top.mode, Mode::Peers);
        assert_eq!(top.watching(), Some((second, Pane::Peers)));
        // Sorting keys mean nothing here; `s` switches to the services of
        // the same address and back, Esc goes back to the table.
        assert_eq!(top.on_key(key('n')), Flow::Continue);
        top.on_key(key('s'));
        assert_eq!(top.watching(), Some((second, Pane::Services)));
        top.on_key(key('s'));
        assert_eq!(top.watching(), Some((second, Pane::Peers)));
        top.on_key(key('s'));
        top.on_key(KeyEvent::from(KeyCode::Esc));
        assert_eq!((top.mode, top.watching()), (Mode::Table, None));
        for _ in 0..10 {
            top.on_key(KeyEvent::from(KeyCode::Up));
        }
        top.on_key(KeyEvent::from(KeyCode::Enter));
        // A new drill-down starts on the peers.
        assert_eq!(top.watching(), Some((first, Pane::Peers)));
    }

    #[test]
    fn help_opens_and_any_key_closes_it() {
        let mut top = sampled();
        top.on_key(key('?'));
        assert_eq!(top.mode, Mode::Help);
        assert_eq!(top.on_key(key('r')), Flow::Continue);
        assert_eq!(top.mode, Mode::Table);
        assert_eq!(top.view.sort, Sort::Total);
    }

    #[test]
    fn attention() {
        let top = sampled();
        let of = |name: &str| {
            top.lines()
                .iter()
                .find(|l| l.name() == name)
                .unwrap()
                .attention()
        };
        assert_eq!(of("dns"), None);
        assert_eq!(of("192.0.2.9"), Some(Attention::Undocumented));
        // Foreign, but quiet.
        assert_eq!(of("192.0.2.255"), None);
        let mut loud = top.lines()[3].clone();
        loud.rates.as_mut().unwrap().rx.packets = 1.0;
        assert_eq!(loud.attention(), Some(Attention::NotHere));
    }
}
