//! The Prometheus collector. Every value is read from the kernel's maps and
//! the live inventory at scrape time; nothing is accumulated here.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Instant, UNIX_EPOCH},
};

use common::{Counters, Direction, OtherKind};
use log::warn;
use prometheus::{
    GaugeVec, IntCounterVec, IntGaugeVec, Opts,
    core::{Collector, Desc},
    proto::MetricFamily,
};

use crate::daemon::Live;

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    /// A gauge with a fractional value (durations).
    Seconds,
}

struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    kind: Kind,
}

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Family {
    Family {
        name,
        help,
        labels,
        kind: Kind::Counter,
    }
}

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Family {
    Family {
        name,
        help,
        labels,
        kind: Kind::Gauge,
    }
}

const ADDRESS: &[&str] = &["interface", "address", "alias"];
const BUCKET: &[&str] = &["interface", "direction"];

// Indexes into FAMILIES, in the order they are declared.
const RX_PACKETS: usize = 0;
const RX_BYTES: usize = 1;
const TX_PACKETS: usize = 2;
const TX_BYTES: usize = 3;
const PRESENT: usize = 4;
const DOCUMENTED: usize = 5;
const ALIAS_INFO: usize = 6;
const NON_IP_PACKETS: usize = 7;
const NON_IP_BYTES: usize = 8;
const OVERFLOW_PACKETS: usize = 9;
const OVERFLOW_BYTES: usize = 10;
const OTHER_PACKETS: usize = 11;
const OTHER_BYTES: usize = 12;
const FOREIGN_SERIES: usize = 13;
const FOREIGN_LIMIT: usize = 14;
const ATTACHED: usize = 15;
const MAP_ENTRIES: usize = 16;
const MAP_CAPACITY: usize = 17;
const RELOAD_SUCCESS: usize = 18;
const RELOAD_TIMESTAMP: usize = 19;
const BUILD_INFO: usize = 20;
const SCRAPE_DURATION: usize = 21;

const FAMILIES: [Family; 22] = [
    counter(
        "aliasstat_receive_packets_total",
        "Packets received for this destination address on this interface (the interface where they were seen). A GSO/GRO packet counts as the wire packets it stands for. alias is the documented name, empty when undocumented.",
        ADDRESS,
    ),
    counter(
        "aliasstat_receive_bytes_total",
        "IP-layer bytes (IP header plus payload) received for this destination address on this interface.",
        ADDRESS,
    ),
    counter(
        "aliasstat_transmit_packets_total",
        "Packets sent from this source address on this interface. A GSO packet counts as the wire packets it stands for.",
        ADDRESS,
    ),
    counter(
        "aliasstat_transmit_bytes_total",
        "IP-layer bytes (IP header plus payload) sent from this source address on this interface.",
        ADDRESS,
    ),
    gauge(
        "aliasstat_address_present",
        "1 while the address is configured on this host (interface is the one holding it, label its IFA_LABEL such as eth0:1); 0 for a documented address that is absent.",
        &["interface", "address", "label"],
    ),
    gauge(
        "aliasstat_address_documented",
        "1 if the alias file documents the address, 0 otherwise, for every address on this host, in the file, or with its own traffic series.",
        &["address"],
    ),
    gauge(
        "aliasstat_alias_info",
        "Always 1: the owner and purpose of each documented alias, from the alias file. Join on address.",
        &["alias", "address", "owner", "purpose"],
    ),
    counter(
        "aliasstat_non_ip_packets_total",
        "Frames that are not well-formed IPv4 or IPv6 (ARP, LLDP, malformed IP), per interface and direction.",
        BUCKET,
    ),
    counter(
        "aliasstat_non_ip_bytes_total",
        "Frame bytes (link-layer header included) of non-IP frames, per interface and direction.",
        BUCKET,
    ),
    counter(
        "aliasstat_overflow_packets_total",
        "IP packets counted here because the address map was full when their address was first seen. Nonzero means --map-capacity is too small.",
        BUCKET,
    ),
    counter(
        "aliasstat_overflow_bytes_total",
        "IP-layer bytes of packets counted in the overflow bucket.",
        BUCKET,
    ),
    counter(
        "aliasstat_foreign_other_packets_total",
        "Packets of foreign addresses (neither on this host nor documented) without a series of their own, summed per interface and direction: those beyond --max-foreign-series, and those evicted after --foreign-idle without traffic.",
        BUCKET,
    ),
    counter(
        "aliasstat_foreign_other_bytes_total",
        "IP-layer bytes of foreign addresses without a series of their own, summed per interface and direction.",
        BUCKET,
    ),
    gauge(
        "aliasstat_foreign_series",
        "Foreign addresses that currently have per-address series.",
        &[],
    ),
    gauge(
        "aliasstat_foreign_series_limit",
        "The --max-foreign-series limit.",
        &[],
    ),
    gauge(
        "aliasstat_program_attached",
        "1 while the counting program is attached to the interface at this hook (tc or xdp) and direction, 0 when it is not.",
        &["interface", "hook", "direction"],
    ),
    gauge(
        "aliasstat_map_entries",
        "Entries in the BPF map: addresses holds one per (interface, direction, address), other the non_ip and overflow buckets.",
        &["map"],
    ),
    gauge(
        "aliasstat_map_capacity",
        "Maximum entries of the BPF map (--map-capacity for addresses).",
        &["map"],
    ),
    gauge(
        "aliasstat_config_last_reload_success",
        "1 if the last load of the alias file succeeded, 0 if it failed and the previous inventory is still in use.",
        &[],
    ),
    gauge(
        "aliasstat_config_last_reload_timestamp_seconds",
        "Unix time of the last load (or failed reload) of the alias file.",
        &[],
    ),
    gauge(
        "aliasstat_build_info",
        "Always 1: the aliasstat version.",
        &["version"],
    ),
    Family {
        kind: Kind::Seconds,
        name: "aliasstat_scrape_duration_seconds",
        help: "Time this scrape took to read the maps and the inventory and build the aliasstat metrics.",
        labels: &[],
    },
];

/// One fresh vector per family per scrape: the values come from the kernel
/// and are set once, never added to across scrapes.
enum Vec_ {
    Counter(IntCounterVec),
    Gauge(IntGaugeVec),
    Seconds(GaugeVec),
}

impl Vec_ {
    fn new(f: &Family) -> Self {
        let opts = Opts::new(f.name, f.help);
        match f.kind {
            Kind::Counter => {
                Self::Counter(IntCounterVec::new(opts, f.labels).expect("valid metric"))
            }
            Kind::Gauge => Self::Gauge(IntGaugeVec::new(opts, f.labels).expect("valid metric")),
            Kind::Seconds => Self::Seconds(GaugeVec::new(opts, f.labels).expect("valid metric")),
        }
    }

    fn set(&self, labels: &[&str], value: u64) {
        match self {
            Self::Counter(v) => v.with_label_values(labels).inc_by(value),
            Self::Gauge(v) => v
                .with_label_values(labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX)),
            Self::Seconds(v) => v.with_label_values(labels).set(value as f64),
        }
    }

    fn set_seconds(&self, seconds: f64) {
        if let Self::Seconds(v) = self {
            v.with_label_values::<&str>(&[]).set(seconds);
        }
    }

    fn collector(&self) -> &dyn Collector {
        match self {
            Self::Counter(v) => v,
            Self::Gauge(v) => v,
            Self::Seconds(v) => v,
        }
    }
}

pub struct AliasCollector {
    live: Arc<Live>,
    max_foreign: usize,
    templates: Vec<Vec_>,
}

impl AliasCollector {
    pub fn new(live: Arc<Live>, max_foreign: usize) -> Self {
        Self {
            live,
            max_foreign,
            templates: FAMILIES.iter().map(Vec_::new).collect(),
        }
    }

    fn fill(&self, v: &[Vec_]) {
        let started = Instant::now();
        let live = &self.live;
        let host = live.host.borrow().clone();
        let status = live.config.borrow().clone();
        let config = &status.config;
        let alias_of = |a: IpAddr| config.alias(a).map_or("", |a| a.name.as_str());

        match live.split() {
            Ok((snap, split)) => {
                // Series are named by interface name, summed over indexes:
                // an interface deleted and created again continues its
                // series instead of restarting it.
                let mut addresses: BTreeMap<(String, IpAddr, Direction), Counters> =
                    BTreeMap::new();
                for c in &split.listed {
                    let key = (host.link_name(c.ifindex), c.address, c.direction);
                    *addresses.entry(key).or_default() += c.counters;
                }
                let mut known: Vec<IpAddr> = Vec::with_capacity(addresses.len());
                for ((iface, address, dir), c) in &addresses {
                    let addr = address.to_string();
                    let labels = [iface.as_str(), addr.as_str(), alias_of(*address)];
                    let (packets, bytes) = match dir {
                        Direction::Rx => (RX_PACKETS, RX_BYTES),
                        Direction::Tx => (TX_PACKETS, TX_BYTES),
                    };
                    v[packets].set(&labels, c.packets);
                    v[bytes].set(&labels, c.bytes);
                    known.push(*address);
                }
                let mut buckets: BTreeMap<(String, Direction, usize, usize), Counters> =
                    BTreeMap::new();
                for o in &snap.other {
                    let families = match o.kind {
                        OtherKind::NonIp => (NON_IP_PACKETS, NON_IP_BYTES),
                        OtherKind::Overflow => (OVERFLOW_PACKETS, OVERFLOW_BYTES),
                        // Idle foreign entries folded away: still foreign
                        // traffic without a series of its own.
                        OtherKind::Evicted => (OTHER_PACKETS, OTHER_BYTES),
                    };
                    let key = (
                        host.link_name(o.ifindex),
                        o.direction,
                        families.0,
                        families.1,
                    );
                    *buckets.entry(key).or_default() += o.counters;
                }
                for ((ifindex, dir), c) in &split.other {
                    let key = (host.link_name(*ifindex), *dir, OTHER_PACKETS, OTHER_BYTES);
                    *buckets.entry(key).or_default() += *c;
                }
                for ((iface, dir, packets, bytes), c) in &buckets {
                    let labels = [iface.as_str(), dir.metric_name()];
                    v[*packets].set(&labels, c.packets);
                    v[*bytes].set(&labels, c.bytes);
                }
                v[MAP_ENTRIES].set(&["addresses"], snap.addresses.len() as u64);
                v[MAP_ENTRIES].set(&["other"], snap.other.len() as u64);
                known.extend(host.addresses().map(|a| a.address));
                known.extend(config.aliases.iter().map(|a| a.address));
                known.sort_unstable();
                known.dedup();
                for a in known {
                    let documented = u64::from(config.alias(a).is_some());
                    v[DOCUMENTED].set(&[&a.to_string()], documented);
                }
            }
            // The self-metrics below still tell what is wrong.
            Err(e) => warn!("scrape: {e}"),
        }

        for a in host.addresses() {
            let addr = a.address.to_string();
            v[PRESENT].set(&[&a.interface, &addr, a.label.as_deref().unwrap_or("")], 1);
        }
        for alias in &config.aliases {
            let addr = alias.address.to_string();
            v[ALIAS_INFO].set(&[&alias.name, &addr, &alias.owner, &alias.purpose], 1);
            if !host.holds(alias.address) {
                v[PRESENT].set(&[alias.interface.as_deref().unwrap_or(""), &addr, ""], 0);
            }
        }
        for a in live.attachments() {
            let labels = [a.iface.as_str(), a.hook.as_str(), a.direction.metric_name()];
            v[ATTACHED].set(&labels, u64::from(a.is_attached()));
        }
        let listed = live
            .foreign
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .listed();
        v[FOREIGN_SERIES].set(&[], listed as u64);
        v[FOREIGN_LIMIT].set(&[], self.max_foreign as u64);
        v[MAP_CAPACITY].set(&["addresses"], u64::from(live.address_capacity));
        v[MAP_CAPACITY].set(&["other"], u64::from(common::names::OTHER_CAPACITY));
        v[RELOAD_SUCCESS].set(&[], u64::from(status.last_reload_success));
        let reloaded = status
            .last_reload
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        v[RELOAD_TIMESTAMP].set(&[], reloaded);
        v[BUILD_INFO].set(&[env!("CARGO_PKG_VERSION")], 1);
        v[SCRAPE_DURATION].set_seconds(started.elapsed().as_secs_f64());
    }
}

impl Collector for AliasCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.templates
            .iter()
            .flat_map(|t| t.collector().desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let fresh: Vec<Vec_> = FAMILIES.iter().map(Vec_::new).collect();
        self.fill(&fresh);
        fresh.iter().flat_map(|v| v.collector().collect()).collect()
    }
}

/// The registry `/metrics` serves: aliasstat's families plus the standard
/// `process_*` ones.
pub fn registry(live: Arc<Live>, max_foreign: usize) -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    registry
        .register(Box::new(AliasCollector::new(live, max_foreign)))
        .expect("aliasstat families are registered once");
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("process families are registered once");
    registry
}

/// The text exposition format.
pub fn encode(registry: &prometheus::Registry) -> Vec<u8> {
    let mut out = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut out,
    )
    .expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::watch;

    use super::*;
    use crate::{
        bpf::{
            attach::Attachment,
            counters::{AddressCount, OtherCount, Snapshot},
        },
        daemon::ConfigStatus,
        foreign::ForeignBudget,
        inventory::{Alias, Config, HostTable},
    };

    fn live(counts: Snapshot, config: Config) -> Arc<Live> {
        let (_, host) = watch::channel(Arc::new(HostTable::default()));
        let (_, config) = watch::channel(ConfigStatus {
            config: Arc::new(config),
            last_reload_success: false,
            last_reload: UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        });
        Arc::new(Live {
            counters: Box::new(counts),
            host,
            config,
            attachments: std::sync::RwLock::new(vec![Attachment {
                iface: "no-such-if0".into(),
                // Not found at the last reconcile.
                ifindex: None,
                hook: crate::bpf::attach::Hook::Tc,
                direction: Direction::Rx,
            }]),
            address_capacity: 4,
            foreign: Mutex::new(ForeignBudget::new(1)),
        })
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
        let config = Config {
            aliases: vec![Alias {
                name: "vip".into(),
                address: "192.0.2.10".parse().unwrap(),
                owner: "web".into(),
                purpose: "TLS".into(),
                interface: Some("eth0".into()),
            }],
        };
        let registry = registry(live(counts, config), 1);
        let text = String::from_utf8(encode(&registry)).unwrap();
        assert_eq!(
            samples(&text),
            [
                r#"aliasstat_address_documented{address="192.0.2.10"} 1"#,
                r#"aliasstat_address_documented{address="224.0.0.1"} 0"#,
                r#"aliasstat_address_present{address="192.0.2.10",interface="eth0",label=""} 0"#,
                r#"aliasstat_alias_info{address="192.0.2.10",alias="vip",owner="web",purpose="TLS"} 1"#,
                r#"aliasstat_build_info{version="0.1.0"} 1"#,
                "aliasstat_config_last_reload_success 0",
                "aliasstat_config_last_reload_timestamp_seconds 1700000000",
                r#"aliasstat_foreign_other_bytes_total{direction="receive",interface="lo"} 160"#,
                r#"aliasstat_foreign_other_packets_total{direction="receive",interface="lo"} 5"#,
                "aliasstat_foreign_series 1",
                "aliasstat_foreign_series_limit 1",
                r#"aliasstat_map_capacity{map="addresses"} 4"#,
                r#"aliasstat_map_capacity{map="other"} 4096"#,
                r#"aliasstat_map_entries{map="addresses"} 4"#,
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
        for f in &FAMILIES {
            assert!(text.contains(&format!("# HELP {} ", f.name)) || !text.contains(f.name));
            assert!(f.help.len() > 20, "{} needs a real HELP text", f.name);
        }
    }
}
