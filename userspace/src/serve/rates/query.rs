//! `/api/v1/rates`: one page of the rate table, filtered, sorted and cut
//! by the daemon, so that a browser watching 10k addresses moves one
//! screen of JSON per refresh instead of the whole map.

use std::{
    cmp::Ordering,
    net::IpAddr,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::{DEPTH, INTERVAL, Point, Table, Tracked};
use crate::{
    inventory::Row,
    top::state::{Attention, Rates},
};

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The most rows one answer carries: about 250 KiB of JSON.
pub const MAX_LIMIT: usize = 500;

/// What `sort` orders by: every column of the page's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Address,
    Interface,
    Label,
    Alias,
    Owner,
    State,
    RxBits,
    RxPackets,
    TxBits,
    TxPackets,
    Total,
    LastTraffic,
    Peers,
}

impl Column {
    pub const ALL: [Self; 13] = [
        Self::Address,
        Self::Interface,
        Self::Label,
        Self::Alias,
        Self::Owner,
        Self::State,
        Self::RxBits,
        Self::RxPackets,
        Self::TxBits,
        Self::TxPackets,
        Self::Total,
        Self::LastTraffic,
        Self::Peers,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Address => "address",
            Self::Interface => "interface",
            Self::Label => "label",
            Self::Alias => "alias",
            Self::Owner => "owner",
            Self::State => "state",
            Self::RxBits => "rx_bits",
            Self::RxPackets => "rx_packets",
            Self::TxBits => "tx_bits",
            Self::TxPackets => "tx_packets",
            Self::Total => "total",
            Self::LastTraffic => "last_traffic",
            Self::Peers => "peers",
        }
    }

    /// Rates and recency read largest first, text A to Z.
    const fn descends(self) -> bool {
        matches!(
            self,
            Self::RxBits
                | Self::RxPackets
                | Self::TxBits
                | Self::TxPackets
                | Self::Total
                | Self::LastTraffic
                | Self::Peers
        )
    }

    fn text(self, row: &Row) -> Option<String> {
        let field = match self {
            Self::Interface => &row.interface,
            Self::Label => &row.label,
            Self::Alias => &row.alias,
            Self::Owner => &row.owner,
            Self::State => return Some(row.state.as_str().to_owned()),
            _ => return None,
        };
        field
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
    }

    fn number(self, t: &Tracked) -> f64 {
        let r = t.rates.unwrap_or_default();
        match self {
            Self::RxBits => r.rx.bits,
            Self::RxPackets => r.rx.packets,
            Self::TxBits => r.tx.bits,
            Self::TxPackets => r.tx.packets,
            Self::Total => r.rx.bits + r.tx.bits,
            Self::LastTraffic => t
                .last_traffic
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64()),
            // Unknown counts after any count, largest first.
            Self::Peers => t.peers.map_or(-1.0, |n| n as f64),
            _ => 0.0,
        }
    }

    /// Ascending order of this column. Empty text sorts after any text,
    /// so ascending shows the named rows first.
    fn compare(self, a: &Tracked, b: &Tracked) -> Ordering {
        match self {
            Self::Address => a.row.address.cmp(&b.row.address),
            Self::Interface | Self::Label | Self::Alias | Self::Owner | Self::State => {
                let (x, y) = (self.text(&a.row), self.text(&b.row));
                (x.is_none(), x).cmp(&(y.is_none(), y))
            }
            _ => self.number(a).total_cmp(&self.number(b)),
        }
    }
}

/// The parameters of `/api/v1/rates`.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub offset: usize,
    pub limit: usize,
    /// Case-insensitive text that the address, interface, label, alias,
    /// owner, purpose or state must contain.
    pub filter: String,
    pub sort: Column,
    pub descending: bool,
    /// One address, with every series of its history (the detail view).
    pub address: Option<IpAddr>,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: DEFAULT_LIMIT,
            filter: String::new(),
            sort: Column::Total,
            descending: true,
            address: None,
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error(
        "unknown parameter `{name}`; /api/v1/rates takes offset, limit, filter, sort, order and address"
    )]
    Unknown { name: String },
    #[error("{name}={value}: not a whole number")]
    Number { name: &'static str, value: String },
    #[error("limit={limit} is above {MAX_LIMIT}; ask for the next rows with offset")]
    Limit { limit: usize },
    #[error("sort={value}: not a column; sort by one of {}", columns())]
    Sort { value: String },
    #[error("order={value}: give asc or desc")]
    Order { value: String },
    #[error("address={value}: not an IPv4 or IPv6 address")]
    Address { value: String },
    #[error("`{text}` is not percent-encoded UTF-8")]
    Encoding { text: String },
}

fn columns() -> String {
    Column::ALL.map(Column::as_str).join(", ")
}

impl Query {
    /// The query string of a request (`None`: no `?` at all).
    pub fn parse(raw: Option<&str>) -> Result<Self, QueryError> {
        let mut q = Self::default();
        let mut order = None;
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value)?;
            match decode(name)?.as_str() {
                "offset" => q.offset = number("offset", &value)?,
                "limit" => q.limit = number("limit", &value)?,
                "filter" => q.filter = value,
                "sort" => {
                    q.sort = Column::ALL
                        .into_iter()
                        .find(|c| c.as_str() == value)
                        .ok_or(QueryError::Sort { value })?;
                }
                "order" => order = Some(value),
                "address" => {
                    q.address = Some(value.parse().map_err(|_| QueryError::Address { value })?);
                }
                name => return Err(QueryError::Unknown { name: name.into() }),
            }
        }
        if q.limit > MAX_LIMIT {
            return Err(QueryError::Limit { limit: q.limit });
        }
        q.descending = match order.as_deref() {
            None => q.sort.descends(),
            Some("asc") => false,
            Some("desc") => true,
            Some(value) => {
                return Err(QueryError::Order {
                    value: value.into(),
                });
            }
        };
        Ok(q)
    }

    fn matches(&self, t: &Tracked) -> bool {
        if let Some(address) = self.address {
            return t.row.address == address;
        }
        if self.filter.is_empty() {
            return true;
        }
        let needle = self.filter.to_lowercase();
        let r = &t.row;
        [
            Some(r.address.to_string().as_str()),
            r.interface.as_deref(),
            r.label.as_deref(),
            r.alias.as_deref(),
            r.owner.as_deref(),
            r.purpose.as_deref(),
            Some(r.state.as_str()),
        ]
        .into_iter()
        .flatten()
        .any(|field| field.to_lowercase().contains(&needle))
    }

    /// The rows asked for, in order; ties keep address order, so rows do
    /// not swap places between refreshes.
    pub fn page<'t>(&self, table: &'t Table, capacity: [u32; 2]) -> Page<'t> {
        let mut chosen: Vec<&Tracked> = table.rows.iter().filter(|t| self.matches(t)).collect();
        chosen.sort_by(|a, b| {
            let primary = self.sort.compare(a, b);
            let primary = if self.descending {
                primary.reverse()
            } else {
                primary
            };
            primary.then_with(|| a.row.address.cmp(&b.row.address))
        });
        let matched = chosen.len();
        let rows = chosen
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .map(|t| PageRow::new(t, self.address.is_some()))
            .collect();
        Page {
            read_at: table.at.and_then(unix_seconds),
            interval_seconds: INTERVAL.as_secs(),
            depth: DEPTH,
            total: table.rows.len(),
            matched,
            offset: self.offset,
            limit: self.limit,
            sort: self.sort.as_str(),
            order: if self.descending { "desc" } else { "asc" },
            map: MapFill::fullest(table.entries, capacity),
            peer_tracking: table.peer_tracking,
            rows,
        }
    }
}

fn number(name: &'static str, value: &str) -> Result<usize, QueryError> {
    value.parse().map_err(|_| QueryError::Number {
        name,
        value: value.into(),
    })
}

/// `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> Result<String, QueryError> {
    let bad = || QueryError::Encoding { text: text.into() };
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(b) = rest.next() {
        bytes.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [rest.next().ok_or_else(bad)?, rest.next().ok_or_else(bad)?];
                let hex = std::str::from_utf8(&hex).map_err(|_| bad())?;
                u8::from_str_radix(hex, 16).map_err(|_| bad())?
            }
            b => b,
        });
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The answer of `/api/v1/rates`.
#[derive(Debug, Serialize)]
pub struct Page<'t> {
    /// When the daemon read the counters, in Unix seconds; null before
    /// its first reading.
    pub read_at: Option<u64>,
    pub interval_seconds: u64,
    /// Points each history holds when full.
    pub depth: usize,
    /// Addresses known, before the filter.
    pub total: usize,
    /// Addresses that match the filter; `rows` is a window of them.
    pub matched: usize,
    pub offset: usize,
    pub limit: usize,
    pub sort: &'static str,
    pub order: &'static str,
    pub map: MapFill,
    /// False with `--peers off`: then every row's `peers` is null.
    pub peer_tracking: bool,
    pub rows: Vec<PageRow<'t>>,
}

/// The fuller address map's entries against its capacity: the one to warn
/// about.
#[derive(Debug, Serialize)]
pub struct MapFill {
    pub entries: usize,
    pub capacity: u32,
}

impl MapFill {
    fn fullest(entries: [usize; 2], capacity: [u32; 2]) -> Self {
        let fill =
            |(entries, capacity): &(usize, u32)| *entries as f64 / f64::from((*capacity).max(1));
        let (entries, capacity) = entries
            .into_iter()
            .zip(capacity)
            .max_by(|a, b| fill(a).total_cmp(&fill(b)))
            .expect("two maps");
        Self { entries, capacity }
    }
}

/// A row of `/api/v1/aliases`, with its rates and recent history.
#[derive(Debug, Serialize)]
pub struct PageRow<'t> {
    #[serde(flatten)]
    pub row: &'t Row,
    pub rates: Option<Rates>,
    pub attention: Option<Attention>,
    /// Unix seconds.
    pub last_traffic: Option<u64>,
    /// Distinct peers listed for the address (as `/api/v1/peers` lists
    /// them, over all its interfaces); null when not tracked or unread.
    pub peers: Option<usize>,
    pub history: Series,
}

impl<'t> PageRow<'t> {
    fn new(t: &'t Tracked, packets: bool) -> Self {
        let series = |f: fn(&Point) -> f32| t.points.iter().map(f).map(round).collect();
        Self {
            row: &t.row,
            rates: t.rates,
            attention: t.attention,
            last_traffic: t.last_traffic.and_then(unix_seconds),
            peers: t.peers,
            history: Series {
                rx_bits: series(|p| p.rx_bits),
                tx_bits: series(|p| p.tx_bits),
                rx_packets: packets.then(|| series(|p| p.rx_packets)),
                tx_packets: packets.then(|| series(|p| p.tx_packets)),
            },
        }
    }
}

fn unix_seconds(at: SystemTime) -> Option<u64> {
    at.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// A tenth is finer than any chart shows, and keeps the JSON short.
fn round(x: f32) -> f32 {
    (x * 10.0).round() / 10.0
}

/// Per-second rates, oldest first, one every `interval_seconds`. The
/// packet series come only with `address=`.
#[derive(Debug, Serialize)]
pub struct Series {
    pub rx_bits: Vec<f32>,
    pub tx_bits: Vec<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_packets: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_packets: Option<Vec<f32>>,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::{
        inventory::State,
        serve::rates::{History, PeerCounts, tests::row},
    };

    #[test]
    fn parses_every_parameter_and_refuses_what_it_does_not_know() {
        let q = Query::parse(Some(
            "offset=50&limit=10&filter=team+web%2F1&sort=owner&address=192.0.2.1",
        ));
        assert_eq!(
            q,
            Ok(Query {
                offset: 50,
                limit: 10,
                filter: "team web/1".into(),
                sort: Column::Owner,
                descending: false,
                address: Some("192.0.2.1".parse().unwrap()),
            })
        );
        assert_eq!(Query::parse(None), Ok(Query::default()));
        assert!(
            Query::parse(Some("sort=alias&order=desc"))
                .unwrap()
                .descending
        );
        let errors = [
            (
                "limit=501",
                "limit=501 is above 500; ask for the next rows with offset",
            ),
            ("offset=-1", "offset=-1: not a whole number"),
            ("order=up", "order=up: give asc or desc"),
            ("address=web", "address=web: not an IPv4 or IPv6 address"),
            ("filter=%zz", "`%zz` is not percent-encoded UTF-8"),
            (
                "page=2",
                "unknown parameter `page`; /api/v1/rates takes offset, limit, filter, sort, order and address",
            ),
        ];
        for (raw, message) in errors {
            assert_eq!(
                Query::parse(Some(raw)).unwrap_err().to_string(),
                message,
                "{raw}"
            );
        }
        let sort = Query::parse(Some("sort=colour")).unwrap_err().to_string();
        assert!(sort.contains("rx_bits, rx_packets"), "{sort}");
        assert_eq!(
            Query::parse(Some("sort=peers")).unwrap().sort,
            Column::Peers
        );
    }

    /// Three addresses at 10, 30 and 20 pkt/s; the middle one documented,
    /// with 1, 2 and no peers.
    fn table() -> Table {
        let history = History::default();
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let rows = |n: u64| {
            let mut web = row("192.0.2.2", State::Documented, 60 * n, 0);
            web.alias = Some("web".into());
            web.owner = Some("Team-Web".into());
            vec![
                row("192.0.2.1", State::Undocumented, 20 * n, 0),
                web,
                row("192.0.2.3", State::Undocumented, 40 * n, 0),
            ]
        };
        let peers = PeerCounts::Counted(
            [("192.0.2.1", 1), ("192.0.2.2", 2)]
                .map(|(a, n)| (a.parse().unwrap(), n))
                .into(),
        );
        history.record(rows(0), [3, 0], &peers, t0, wall);
        history.record(rows(1), [3, 0], &peers, t0 + Duration::from_secs(2), wall);
        (*history.table()).clone()
    }

    fn order(page: &Page<'_>) -> Vec<String> {
        page.rows
            .iter()
            .map(|r| r.row.address.to_string())
            .collect()
    }

    #[test]
    fn filters_sorts_and_pages() {
        let table = table();
        let page = |raw| Query::parse(Some(raw)).unwrap().page(&table, [16, 16]);
        let all = page("");
        assert_eq!(order(&all), ["192.0.2.2", "192.0.2.3", "192.0.2.1"]);
        assert_eq!((all.total, all.matched, all.map.entries), (3, 3, 3));
        assert_eq!(
            order(&page("sort=rx_packets&order=asc")),
            ["192.0.2.1", "192.0.2.3", "192.0.2.2"]
        );
        assert_eq!(
            order(&page("sort=alias")),
            ["192.0.2.2", "192.0.2.1", "192.0.2.3"]
        );
        assert_eq!(order(&page("offset=1&limit=1")), ["192.0.2.3"]);
        assert_eq!(
            order(&page("sort=peers")),
            ["192.0.2.2", "192.0.2.1", "192.0.2.3"]
        );
        let filtered = page("filter=team-WEB");
        assert_eq!(
            (order(&filtered), filtered.matched),
            (vec!["192.0.2.2".to_string()], 1)
        );
        assert_eq!(page("filter=undocumented").matched, 2);
        assert_eq!(page("filter=nothing").rows.len(), 0);
    }

    #[test]
    fn a_page_has_the_documented_shape() {
        let table = table();
        let one = Query::parse(Some("address=192.0.2.2"))
            .unwrap()
            .page(&table, [16, 16]);
        let text = serde_json::to_value(&one).unwrap();
        let row = &text["rows"][0];
        assert_eq!(row["alias"], "web");
        assert_eq!(row["rates"]["rx"]["packets"], 30.0);
        assert_eq!(row["rates"]["rx"]["bits"], 24000.0);
        assert_eq!(row["history"]["rx_packets"], serde_json::json!([30.0]));
        assert_eq!(row["last_traffic"], 0);
        assert_eq!(row["peers"], 2);
        assert_eq!(text["peer_tracking"], true);
        assert_eq!(row["attention"], serde_json::Value::Null);
        assert_eq!(
            text["map"],
            serde_json::json!({"entries": 3, "capacity": 16})
        );
        let listed = Query::default().page(&table, [16, 16]);
        let text = serde_json::to_value(&listed).unwrap();
        assert_eq!(text["rows"][1]["attention"], "undocumented");
        assert!(text["rows"][0]["history"].get("rx_packets").is_none());
        assert_eq!(text["rows"][1]["peers"], 0);
    }

    #[test]
    fn with_peers_off_the_counts_are_null_not_zero() {
        let history = History::default();
        let rows = vec![row("192.0.2.1", State::Documented, 0, 0)];
        history.record(rows, [1, 0], &PeerCounts::Off, Instant::now(), UNIX_EPOCH);
        let table = history.table();
        let text = serde_json::to_value(Query::default().page(&table, [16, 16])).unwrap();
        assert_eq!(text["peer_tracking"], false);
        assert_eq!(text["rows"][0]["peers"], serde_json::Value::Null);
    }
}
