//! The peer families: per local address, how many peers are listed and
//! when its last traffic was, and the packets whose pair found the peer
//! table full. Never a label per peer: the peers themselves are served by
//! `/api/v1/peers`. Foreign addresses (not on this host, not documented)
//! get no series here, so a scan or a spoofed flood adds none.

use bytes::BytesMut;

use super::family::{Family, Labels};
use crate::{
    daemon::Live,
    inventory::{Config, HostTable, State},
    peers::{time, view},
};

pub static ADDRESS_PEERS: Family<3> = Family::gauge(
    "aliasstat_address_peers",
    "Distinct remote peers (addresses, or prefixes with --peer-prefix-v4/-v6) listed for the address: in the kernel's peer table now, or seen within --peer-retention. aliasstat peers ADDRESS lists them.",
    Labels(["address", "alias", "interface"]),
);

pub static LAST_TRAFFIC: Family<3> = Family::gauge(
    "aliasstat_address_last_traffic_timestamp_seconds",
    "Unix time of the last packet from or to any listed peer of the address; no series when none is listed.",
    Labels(["address", "alias", "interface"]),
);

pub static NOT_RECORDED: Family<2> = Family::counter(
    "aliasstat_peers_not_recorded_packets_total",
    "Packets of the address whose (address, peer) pair found the kernel's peer table full: counted for the address, missing from its peer list. Raise --peer-capacity.",
    Labels(["address", "interface"]),
);

/// The kernel's peer maps' fill, for the map gauges.
#[derive(Clone, Copy, Debug)]
pub struct PeerFill {
    /// Entries of `PEERS_V4` and `PEERS` (IPv6).
    pub peers_v4: usize,
    pub peers: usize,
    pub capacity: crate::peers::Capacity,
    pub missed: usize,
    pub missed_capacity: u32,
}

/// One scrape's peer series, read at once.
pub struct PeerSeries {
    /// (address, alias, interface), peers listed, last traffic.
    addresses: Vec<([String; 3], u64, Option<u64>)>,
    /// (address, interface), packets.
    missed: Vec<([String; 2], u64)>,
    pub fill: PeerFill,
}

impl PeerSeries {
    /// `None` with `--peers off`, or when the maps could not be read
    /// (logged).
    pub fn read(live: &Live, host: &HostTable, config: &Config) -> Option<Self> {
        let peers = live.peers()?;
        let read = peers.with_all(|tables| {
            let clock = time::Clock::now();
            let list = view::build(&tables, host, config, &clock);
            let kept = |state| state != State::Foreign;
            let addresses = list
                .iter()
                .filter(|a| kept(a.state))
                .map(|a| {
                    let alias = a.alias.clone().unwrap_or_default();
                    let last = a.last_traffic.map(|t| time::unix_ms(t.0) / 1000);
                    let labels = [a.address.to_string(), alias, a.interface.clone()];
                    (labels, a.peers.len() as u64, last)
                })
                .collect();
            let missed = view::missed(&tables, host)
                .into_iter()
                .filter(|((_, address), _)| kept(crate::inventory::state(host, config, *address)))
                .map(|((interface, address), c)| ([address.to_string(), interface], c.packets))
                .collect();
            Self {
                addresses,
                missed,
                fill: PeerFill {
                    peers_v4: tables.kernel_v4,
                    peers: tables.kernel.len() - tables.kernel_v4,
                    capacity: peers.kernel().capacity(),
                    missed: tables.missed.len(),
                    missed_capacity: peers.kernel().missed_capacity(),
                },
            }
        });
        read.map_err(|e| log::warn!("scrape: {e}")).ok()
    }

    /// The two per-address families.
    pub fn write_addresses(&self, out: &mut BytesMut) {
        let mut section = LAST_TRAFFIC.open(out);
        for (labels, _, last) in &self.addresses {
            if let Some(last) = last {
                section.sample(labels.each_ref().map(String::as_str), *last);
            }
        }
        let mut section = ADDRESS_PEERS.open(out);
        for (labels, peers, _) in &self.addresses {
            section.sample(labels.each_ref().map(String::as_str), *peers);
        }
    }

    pub fn write_not_recorded(&self, out: &mut BytesMut) {
        let mut section = NOT_RECORDED.open(out);
        for (labels, packets) in &self.missed {
            section.sample(labels.each_ref().map(String::as_str), *packets);
        }
    }
}
