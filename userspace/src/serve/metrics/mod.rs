//! The Prometheus exposition. Every value is read from the kernel's maps
//! and the live inventory at scrape time; nothing is accumulated here.
//!
//! The text is written straight from the map snapshot into one buffer,
//! family by family in name order, with the label text of each series
//! rendered once per inventory ([`labels`]). Scrapes that arrive while one
//! is being rendered wait for it and get the same body, so concurrent
//! scrapes cost one render and one copy of the text however many there
//! are. A body lives only as long as a response sends it: between scrapes
//! the daemon holds the label text, not megabytes of old exposition (the
//! allocator maps a body on its own and unmaps it when freed, see
//! `daemon/malloc.rs`). The prometheus crate is kept for the `process_*` families only: it
//! reads /proc well, and those families are a few lines.

mod addresses;
mod buckets;
mod family;
mod inventory;
mod labels;
mod peers;
mod self_metrics;
mod services;

use std::{
    io::Write as _,
    sync::{
        Arc, Mutex, OnceLock, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use bytes::{BufMut as _, Bytes, BytesMut};
use common::Direction;
use flate2::{Compression, write::GzEncoder};
use log::warn;
use prometheus::Encoder as _;

use self::{
    buckets::{Bucket, Buckets},
    labels::LabelCache,
    self_metrics::Fill,
};
use crate::{bpf::counters::AddressCount, daemon::Live};

/// The gzip level: the fastest. Exposition text is so repetitive that
/// level 1 already shrinks it about tenfold, and higher levels cost
/// several times the CPU for a few percent (see BENCHMARKS.md).
const GZIP_LEVEL: u32 = 1;

/// One rendered exposition, shared by every scrape that asked for it.
pub struct Body {
    plain: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Body {
    pub fn plain(&self) -> Bytes {
        self.plain.clone()
    }

    /// The body gzipped, compressed by the first scrape that asks. Blocks:
    /// call it off the async runtime.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut gz = GzEncoder::new(
                    BytesMut::with_capacity(self.plain.len() / 8).writer(),
                    Compression::new(GZIP_LEVEL),
                );
                gz.write_all(&self.plain)
                    .and_then(|()| gz.finish())
                    .map(|w| w.into_inner().freeze())
                    .expect("writing to memory cannot fail")
            })
            .clone()
    }
}

/// Serves `/metrics`: renders on demand, one render at a time.
pub struct Exporter {
    live: Arc<Live>,
    renderer: Arc<tokio::sync::Mutex<Renderer>>,
    /// Renders started so far; each body is tagged with its number.
    started: AtomicU64,
    /// The last body, while a response still holds it.
    latest: Mutex<Option<(u64, Weak<Body>)>>,
}

impl Exporter {
    pub fn new(live: Arc<Live>) -> Arc<Self> {
        Arc::new(Self {
            live,
            renderer: Arc::default(),
            started: AtomicU64::new(0),
            latest: Mutex::new(None),
        })
    }

    /// A body rendered after this call began: the one a render that
    /// started meanwhile produced, or a new one.
    pub async fn scrape(self: &Arc<Self>) -> Result<Arc<Body>, tokio::task::JoinError> {
        let arrived = self.started.load(Ordering::Acquire);
        // Waiting here is asynchronous: a burst of scrapes holds no
        // threads and no buffers while one of them renders.
        let mut renderer = self.renderer.clone().lock_owned().await;
        if let Some(body) = self.fresh_since(arrived) {
            return Ok(body);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let number = this.started.fetch_add(1, Ordering::AcqRel) + 1;
            let body = Arc::new(renderer.render(&this.live));
            *this.latest() = Some((number, Arc::downgrade(&body)));
            body
        })
        .await
    }

    fn fresh_since(&self, arrived: u64) -> Option<Arc<Body>> {
        match &*self.latest() {
            Some((number, body)) if *number > arrived => body.upgrade(),
            _ => None,
        }
    }

    fn latest(&self) -> std::sync::MutexGuard<'_, Option<(u64, Weak<Body>)>> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What is kept between scrapes: the label text, and the size of the last
/// body.
pub struct Renderer {
    /// Length of the last body, to size the next one's buffer at once.
    last_len: usize,
    labels: LabelCache,
    process: prometheus::Registry,
}

impl Default for Renderer {
    fn default() -> Self {
        let process = prometheus::Registry::new();
        process
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process families are registered once");
        Self {
            last_len: 0,
            labels: LabelCache::default(),
            process,
        }
    }
}

impl Renderer {
    /// The whole exposition, aliasstat's families in name order, then the
    /// `process_*` ones.
    pub fn render(&mut self, live: &Live) -> Body {
        let started = Instant::now();
        // Room for what the last scrape wrote and some growth: one mapping,
        // never copied while it fills.
        let mut body = BytesMut::with_capacity(self.last_len + self.last_len / 16);
        let host = live.host();
        let status = live.config();
        self.labels.follow(&host, &status.config);
        let read = live.split().map_err(|e| warn!("scrape: {e}")).ok();
        // Right after the address counters, before the peers are read: the
        // service maps are read as close to them as the two reads allow.
        let services = read.as_ref().and_then(|(snap, _)| {
            let listed = live.service_series(snap);
            listed.map_err(|e| warn!("scrape: {e}")).ok().flatten()
        });
        let (series, buckets, entries) = match &read {
            Some((snap, split)) => (
                addresses::series(&split.listed, &mut self.labels),
                Buckets::new(&snap.other, split, &mut self.labels),
                Some((family_entries(&snap.addresses), snap.other.len())),
            ),
            // The self-metrics still tell what is wrong.
            None => (Vec::new(), Buckets::default(), None),
        };
        drop(read);
        let peers = peers::PeerSeries::read(live, &host, &status.config);
        self.labels.prune(series.len());
        let fill = Fill {
            foreign_series: live.foreign_series(),
            foreign_limit: live.max_foreign_series(),
            address_capacity: live.address_capacity(),
            entries,
            memory: live.map_memory(),
            peers: peers.as_ref().map(|p| p.fill),
            services: services.as_ref().and(live.service_entries()),
            history_write_errors: live.history_write_errors(),
        };
        let out = &mut body;
        let inventory = self.labels.inventory();
        inventory.write_documented(out, series.iter().map(|s| s.address));
        if let Some(peers) = &peers {
            peers.write_addresses(out);
        }
        inventory.write_present_and_info(out);
        self_metrics::write_build_and_reload(out, &status);
        buckets.write(out, Bucket::ForeignOther);
        self_metrics::write_fill(out, &fill);
        buckets.write(out, Bucket::NonIp);
        buckets.write(out, Bucket::Overflow);
        if let Some(peers) = &peers {
            peers.write_not_recorded(out);
        }
        self_metrics::write_attached(out, &live.attachments());
        addresses::write(out, Direction::Rx, &series, self.labels.text());
        self_metrics::write_duration(out, started.elapsed().as_secs_f64());
        if let Some((listed, doc)) = &services {
            services::write_drift(out, doc, &status.config);
            services::write(out, listed);
        }
        addresses::write(out, Direction::Tx, &series, self.labels.text());
        if let Some((_, doc)) = &services {
            services::write_unserved(out, doc);
        }
        prometheus::TextEncoder::new()
            .encode(&self.process.gather(), &mut (&mut *out).writer())
            .expect("writing to memory cannot fail");
        self.last_len = body.len();
        Body {
            plain: body.freeze(),
            gzip: OnceLock::new(),
        }
    }
}

/// Address entries per family, in [`crate::bpf::load::ADDRESS_MAPS`]
/// order.
fn family_entries(addresses: &[AddressCount]) -> [usize; 2] {
    let v4 = addresses.iter().filter(|a| a.address.is_ipv4()).count();
    [v4, addresses.len() - v4]
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use common::{Counters, OtherKind};
    use tokio::sync::watch;

    use super::*;
    use crate::{
        bpf::{
            attach::Attachment,
            counters::{AddressCount, OtherCount, Snapshot},
            memory::MapMemory,
        },
        daemon::{ConfigStatus, Parts},
        inventory::{Alias, Config, HostTable, host::tests::link},
    };

    fn live(counts: Snapshot, config: Config) -> Arc<Live> {
        // The counts below were seen on ifindex 1, which rtnetlink names.
        let mut table = HostTable::default();
        table.apply(&link(1, "lo"));
        let (_, host) = watch::channel(Arc::new(table));
        let (_, config) = watch::channel(ConfigStatus {
            config: Arc::new(config),
            last_reload_success: false,
            last_reload: UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        });
        Arc::new(Live::new(Parts {
            counters: Box::new(counts),
            host,
            config,
            attachments: vec![Attachment {
                iface: "no-such-if0".into(),
                // Not found at the last reconcile.
                ifindex: None,
                hook: crate::bpf::attach::Hook::Tc,
                direction: Direction::Rx,
            }],
            address_capacity: [4, 2],
            memory: MapMemory::default(),
            max_foreign_series: 1,
            peers: None,
            services: None,
            history: Some(crate::history::recorder::Options {
                state_dir: "/nonexistent".into(),
                step: std::time::Duration::from_secs(300),
            }),
        }))
    }

    fn render(live: &Live) -> String {
        let body = Renderer::default().render(live);
        String::from_utf8(body.plain().to_vec()).unwrap()
    }

    fn samples(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with("aliasstat_") && !l.starts_with("aliasstat_scrape_duration"))
            .collect()
    }

    #[test]
    fn families_carry_kernel_values_and_labels() {
        let count = |ip: &str, direction, packets, bytes| AddressCount {
            ifindex: 1,
            direction,
            address: ip.parse().unwrap(),
            counters: Counters::new(packets, bytes),
        };
        let counts = Snapshot {
            addresses: vec![
                count("192.0.2.10", Direction::Rx, 3, 426),
                count("192.0.2.10", Direction::Tx, 2, 200),
                count("224.0.0.1", Direction::Rx, 1, 32),
                count("224.0.0.2", Direction::Rx, 5, 160),
            ],
            other: vec![OtherCount {
                ifindex: 1,
                direction: Direction::Rx,
                kind: OtherKind::NonIp,
                counters: Counters::new(2, 84),
            }],
        };
        let config = Config::new(vec![Alias {
            name: "vip".into(),
            address: "192.0.2.10".parse().unwrap(),
            owner: "web".into(),
            purpose: "TLS".into(),
            interface: Some("eth0".into()),
            service: None,
            commit_bps: Some(100_000_000),
        }]);
        let text = render(&live(counts, config));
        assert_eq!(
            samples(&text),
            [
                r#"aliasstat_address_documented{address="192.0.2.10"} 1"#,
                r#"aliasstat_address_documented{address="224.0.0.1"} 0"#,
                r#"aliasstat_address_present{address="192.0.2.10",interface="eth0",label=""} 0"#,
                r#"aliasstat_alias_commit_bytes_per_second{alias="vip"} 12500000"#,
                r#"aliasstat_alias_info{address="192.0.2.10",alias="vip",owner="web",purpose="TLS"} 1"#,
                r#"aliasstat_build_info{version="0.1.0"} 1"#,
                "aliasstat_config_last_reload_success 0",
                "aliasstat_config_last_reload_timestamp_seconds 1700000000",
                r#"aliasstat_foreign_other_bytes_total{direction="receive",interface="lo"} 160"#,
                r#"aliasstat_foreign_other_packets_total{direction="receive",interface="lo"} 5"#,
                "aliasstat_foreign_series 1",
                "aliasstat_foreign_series_limit 1",
                "aliasstat_history_write_errors_total 0",
                r#"aliasstat_map_capacity{map="addresses_v4"} 4"#,
                r#"aliasstat_map_capacity{map="addresses_v6"} 2"#,
                r#"aliasstat_map_capacity{map="other"} 4096"#,
                r#"aliasstat_map_entries{map="addresses_v4"} 4"#,
                r#"aliasstat_map_entries{map="addresses_v6"} 0"#,
                r#"aliasstat_map_entries{map="other"} 1"#,
                r#"aliasstat_non_ip_bytes_total{direction="receive",interface="lo"} 84"#,
                r#"aliasstat_non_ip_packets_total{direction="receive",interface="lo"} 2"#,
                r#"aliasstat_program_attached{direction="receive",hook="tc",interface="no-such-if0"} 0"#,
                r#"aliasstat_receive_bytes_total{address="192.0.2.10",alias="vip",interface="lo"} 426"#,
                r#"aliasstat_receive_bytes_total{address="224.0.0.1",alias="",interface="lo"} 32"#,
                r#"aliasstat_receive_packets_total{address="192.0.2.10",alias="vip",interface="lo"} 3"#,
                r#"aliasstat_receive_packets_total{address="224.0.0.1",alias="",interface="lo"} 1"#,
                r#"aliasstat_transmit_bytes_total{address="192.0.2.10",alias="vip",interface="lo"} 200"#,
                r#"aliasstat_transmit_packets_total{address="192.0.2.10",alias="vip",interface="lo"} 2"#,
            ]
        );
        // Every family explains itself.
        for f in ALL {
            assert!(text.contains(&format!("# HELP {} ", f.name)) || !text.contains(f.name));
            assert!(f.help.len() > 20, "{} needs a real HELP text", f.name);
        }
        // Families come in name order, each introduced once.
        let helps: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# HELP "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert!(helps.is_sorted(), "{helps:?}");
        for f in ALL {
            let n = helps.iter().filter(|h| **h == f.name).count();
            assert!(n <= 1, "{} introduced {n} times", f.name);
        }
    }

    #[test]
    fn every_family_is_named_and_explained_as_prometheus_asks() {
        for f in ALL {
            assert!(f.name.starts_with("aliasstat_"), "{}", f.name);
            let counter = f.kind == family::Kind::Counter;
            assert_eq!(
                f.name.ends_with("_total"),
                counter,
                "{}: _total iff counter",
                f.name
            );
            // Base units only: bytes and seconds, never kilo-, milli-, bits.
            for unit in ["_kb", "_mb", "_ms", "_milliseconds", "_bits", "_percent"] {
                assert!(!f.name.contains(unit), "{} is not in base units", f.name);
            }
            assert!(f.help.len() > 20, "{} needs a real HELP text", f.name);
            assert!(
                !f.help.contains(['\\', '\n']),
                "{}: HELP is written unescaped",
                f.name
            );
            assert!(f.labels.is_sorted(), "{}: labels in name order", f.name);
        }
        let mut names: Vec<&str> = ALL.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "family names are unique");
    }

    #[test]
    fn concurrent_scrapes_share_one_body() {
        let exporter = Exporter::new(live(Snapshot::default(), Config::default()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bodies = rt.block_on(async {
            let scrapes = (0..20).map(|_| {
                let e = exporter.clone();
                tokio::spawn(async move { e.scrape().await.unwrap() })
            });
            futures::future::try_join_all(scrapes).await.unwrap()
        });
        // The first renders alone; all that arrived while it did share the
        // one render that starts after it.
        let distinct = bodies
            .iter()
            .map(Arc::as_ptr)
            .collect::<std::collections::BTreeSet<_>>();
        assert!(
            distinct.len() <= 2,
            "{} renders for 20 scrapes",
            distinct.len()
        );
        let gz = bodies[0].gzip();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), &bodies[0].plain()[..]);
    }

    /// Every family, for the checks above.
    const ALL: &[family::Meta] = &[
        addresses::RECEIVE_PACKETS.meta(),
        addresses::RECEIVE_BYTES.meta(),
        addresses::TRANSMIT_PACKETS.meta(),
        addresses::TRANSMIT_BYTES.meta(),
        buckets::NON_IP_PACKETS.meta(),
        buckets::NON_IP_BYTES.meta(),
        buckets::OVERFLOW_PACKETS.meta(),
        buckets::OVERFLOW_BYTES.meta(),
        buckets::FOREIGN_OTHER_PACKETS.meta(),
        buckets::FOREIGN_OTHER_BYTES.meta(),
        inventory::DOCUMENTED.meta(),
        inventory::PRESENT.meta(),
        inventory::COMMIT.meta(),
        inventory::ALIAS_INFO.meta(),
        peers::ADDRESS_PEERS.meta(),
        peers::LAST_TRAFFIC.meta(),
        peers::NOT_RECORDED.meta(),
        self_metrics::FOREIGN_SERIES.meta(),
        self_metrics::FOREIGN_LIMIT.meta(),
        self_metrics::ATTACHED.meta(),
        self_metrics::MAP_ENTRIES.meta(),
        self_metrics::MAP_CAPACITY.meta(),
        self_metrics::MAP_MEMORY.meta(),
        self_metrics::RELOAD_SUCCESS.meta(),
        self_metrics::RELOAD_TIMESTAMP.meta(),
        self_metrics::BUILD_INFO.meta(),
        self_metrics::SCRAPE_DURATION.meta(),
        services::DRIFT.meta(),
        services::RECEIVE_BYTES.meta(),
        services::RECEIVE_PACKETS.meta(),
        services::TRANSMIT_BYTES.meta(),
        services::TRANSMIT_PACKETS.meta(),
        services::UNSERVED_BYTES.meta(),
        services::UNSERVED_PACKETS.meta(),
    ];
}
