//! aliasstat's own health: attachments, map fill, the series budget, the
//! alias file's last load, the version, and how long the scrape took.

use std::time::UNIX_EPOCH;

use bytes::BytesMut;

use super::{
    family::{Family, Kind, Labels},
    peers::PeerFill,
};
use crate::{
    bpf::{attach::Attachment, load::ADDRESS_MAPS, memory::MapBytes},
    daemon::ConfigStatus,
    services::kernel::SERVICE_MAPS,
};

pub static FOREIGN_SERIES: Family<0> = Family {
    name: "aliasstat_foreign_series",
    help: "Foreign addresses that currently have per-address series.",
    kind: Kind::Gauge,
    labels: Labels([]),
};

pub static FOREIGN_LIMIT: Family<0> = Family {
    name: "aliasstat_foreign_series_limit",
    help: "The --max-foreign-series limit.",
    kind: Kind::Gauge,
    labels: Labels([]),
};

pub static ATTACHED: Family<3> = Family {
    name: "aliasstat_program_attached",
    help: "1 while the counting program is attached to the interface at this hook (tc or xdp) and direction, 0 when it is not.",
    kind: Kind::Gauge,
    labels: Labels(["direction", "hook", "interface"]),
};

pub static HISTORY_WRITE_ERRORS: Family<0> = Family {
    name: "aliasstat_history_write_errors_total",
    help: "Failed writes to the history database under --state-dir (locked, corrupt, unwritable, full). Counting and serving go on; the log says why, and the next interval that is written covers the time since the last one.",
    kind: Kind::Counter,
    labels: Labels([]),
};

pub static MAP_ENTRIES: Family<1> = Family {
    name: "aliasstat_map_entries",
    help: "Entries in the BPF map: addresses_v4 and addresses_v6 hold one per (interface, direction, address) of their family, other the non_ip, overflow and evicted buckets, peers_v4 one per (interface, IPv4 address, peer), peers the same for IPv6, peers_missed one per address with not-recorded packets, services one per (cgroup, interface, direction, local address) with traffic (as of the scrape's read of the service matrix).",
    kind: Kind::Gauge,
    labels: Labels(["map"]),
};

pub static MAP_CAPACITY: Family<1> = Family {
    name: "aliasstat_map_capacity",
    help: "Maximum entries of the BPF map (--map-capacity for each of addresses_v4 and addresses_v6, and for peers_missed; --peer-capacity for each of peers_v4 and peers; fixed for other and services).",
    kind: Kind::Gauge,
    labels: Labels(["map"]),
};

pub static MAP_MEMORY: Family<1> = Family {
    name: "aliasstat_map_memory_bytes",
    help: "Kernel memory of the BPF map as the kernel accounts it (memlock in its fdinfo). The per-CPU maps (addresses_v4, addresses_v6, other) take a value per possible CPU for every entry, used or not.",
    kind: Kind::Gauge,
    labels: Labels(["map"]),
};

pub static RELOAD_SUCCESS: Family<0> = Family {
    name: "aliasstat_config_last_reload_success",
    help: "1 if the last load of the alias file succeeded, 0 if it failed and the previous inventory is still in use.",
    kind: Kind::Gauge,
    labels: Labels([]),
};

pub static RELOAD_TIMESTAMP: Family<0> = Family {
    name: "aliasstat_config_last_reload_timestamp_seconds",
    help: "Unix time of the last load (or failed reload) of the alias file.",
    kind: Kind::Gauge,
    labels: Labels([]),
};

pub static BUILD_INFO: Family<1> = Family {
    name: "aliasstat_build_info",
    help: "Always 1: the aliasstat version.",
    kind: Kind::Gauge,
    labels: Labels(["version"]),
};

pub static SCRAPE_DURATION: Family<0> = Family {
    name: "aliasstat_scrape_duration_seconds",
    help: "Time this scrape took to read the maps and the inventory and build the aliasstat metrics.",
    kind: Kind::Gauge,
    labels: Labels([]),
};

/// The version and the alias file's last load.
pub fn write_build_and_reload(out: &mut BytesMut, status: &ConfigStatus) {
    BUILD_INFO.write(out, [env!("CARGO_PKG_VERSION")], true);
    RELOAD_SUCCESS.write(out, [], status.last_reload_success);
    let reloaded = status
        .last_reload
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    RELOAD_TIMESTAMP.write(out, [], reloaded);
}

/// How full the series budget and the maps are.
pub struct Fill {
    pub foreign_series: usize,
    pub foreign_limit: usize,
    /// Of each address map, in [`ADDRESS_MAPS`] order.
    pub address_capacity: [u32; 2],
    /// Entries of each address map and of the other map; `None` when they
    /// could not be read.
    pub entries: Option<([usize; 2], usize)>,
    /// Every map's kernel memory.
    pub memory: Vec<MapBytes>,
    /// The peer table's fill; `None` with `--peers off` or unread.
    pub peers: Option<PeerFill>,
    /// Failed history writes; `None` without a history.
    pub history_write_errors: Option<u64>,
    /// Entries of each service map; `None` with `--services off` or unread.
    pub services: Option<[usize; 2]>,
}

pub fn write_fill(out: &mut BytesMut, fill: &Fill) {
    FOREIGN_SERIES.write(out, [], fill.foreign_series as u64);
    FOREIGN_LIMIT.write(out, [], fill.foreign_limit as u64);
    // Labelled as the memory is: the map's name, lower-cased.
    let labels = ADDRESS_MAPS.map(str::to_ascii_lowercase);
    if let Some(errors) = fill.history_write_errors {
        HISTORY_WRITE_ERRORS.write(out, [], errors);
    }
    let mut section = MAP_CAPACITY.open(out);
    for (label, capacity) in labels.iter().zip(fill.address_capacity) {
        section.sample([label.as_str()], u64::from(capacity));
    }
    section.sample(["other"], u64::from(common::names::OTHER_CAPACITY));
    if let Some(p) = fill.peers {
        section.sample(["peers_v4"], u64::from(p.capacity.v4));
        section.sample(["peers"], u64::from(p.capacity.v6));
        section.sample(["peers_missed"], u64::from(p.missed_capacity));
    }
    let service_labels = SERVICE_MAPS.map(str::to_ascii_lowercase);
    if fill.services.is_some() {
        for label in &service_labels {
            section.sample([label.as_str()], u64::from(common::names::SERVICE_CAPACITY));
        }
    }
    let mut section = MAP_ENTRIES.open(out);
    if let Some((addresses, other)) = fill.entries {
        for (label, entries) in labels.iter().zip(addresses) {
            section.sample([label.as_str()], entries as u64);
        }
        section.sample(["other"], other as u64);
    }
    if let Some(p) = fill.peers {
        section.sample(["peers_v4"], p.peers_v4 as u64);
        section.sample(["peers"], p.peers as u64);
        section.sample(["peers_missed"], p.missed as u64);
    }
    if let Some(filled) = fill.services {
        for (label, entries) in service_labels.iter().zip(filled) {
            section.sample([label.as_str()], entries as u64);
        }
    }
    let mut section = MAP_MEMORY.open(out);
    for map in &fill.memory {
        section.sample([map.name.as_str()], map.bytes);
    }
}

pub fn write_attached(out: &mut BytesMut, attachments: &[Attachment]) {
    let mut section = ATTACHED.open(out);
    for a in attachments {
        let values = [a.direction.metric_name(), a.hook.as_str(), a.iface.as_str()];
        section.sample(values, a.is_attached());
    }
}

pub fn write_duration(out: &mut BytesMut, seconds: f64) {
    SCRAPE_DURATION.write(out, [], seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_memory_has_one_sample_per_map() {
        let fill = Fill {
            foreign_series: 0,
            foreign_limit: 0,
            address_capacity: [12_288, 12_288],
            entries: None,
            peers: None,
            history_write_errors: None,
            services: None,
            memory: vec![
                MapBytes {
                    name: "addresses_v4".into(),
                    bytes: 1_442_752,
                },
                MapBytes {
                    name: "aya_logs".into(),
                    bytes: 144_200,
                },
            ],
        };
        let mut out = BytesMut::new();
        write_fill(&mut out, &fill);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let memory: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("aliasstat_map_memory_bytes"))
            .collect();
        assert_eq!(
            memory,
            [
                r#"aliasstat_map_memory_bytes{map="addresses_v4"} 1442752"#,
                r#"aliasstat_map_memory_bytes{map="aya_logs"} 144200"#,
            ]
        );
    }

    #[test]
    fn the_service_map_has_its_fill() {
        let fill = Fill {
            foreign_series: 0,
            foreign_limit: 0,
            address_capacity: [4, 4],
            entries: Some(([1, 0], 0)),
            peers: None,
            history_write_errors: None,
            services: Some([8, 3]),
            memory: vec![],
        };
        let mut out = BytesMut::new();
        write_fill(&mut out, &fill);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let services: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(r#"{map="services_v"#))
            .collect();
        assert_eq!(
            services,
            [
                r#"aliasstat_map_capacity{map="services_v4"} 8192"#,
                r#"aliasstat_map_capacity{map="services_v6"} 8192"#,
                r#"aliasstat_map_entries{map="services_v4"} 8"#,
                r#"aliasstat_map_entries{map="services_v6"} 3"#,
            ]
        );
    }
}
