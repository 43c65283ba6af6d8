//! The drill-down: Enter on a row of `top` opens the peers of its address,
//! with live rates per peer from `/api/v1/peers?address=A`; `s` switches
//! to its services (see [`super::services`]) and back; Esc returns.
//! Like `state`, nothing here draws, sleeps or reads a clock.

use std::{net::IpAddr, time::Instant};

use common::Counters;

use super::{
    services::ServicesPane,
    state::{Baseline, Rates},
};
use crate::peers::{
    Remote,
    view::{AddressPeers, PeerRow, Stamp},
};

/// One reading of the address's peers.
#[derive(Clone, Debug)]
pub struct PeerSample {
    pub at: Instant,
    pub list: Vec<AddressPeers>,
}

/// One peer on one interface, as last read, with its rates.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerLine {
    pub interface: String,
    pub peer: Remote,
    pub rx: Counters,
    pub tx: Counters,
    pub last_seen: Stamp,
    /// None until there are two readings.
    pub rates: Option<Rates>,
}

/// What the drill-down shows of its address, and so what the sampler reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Peers,
    Services,
}

/// The drill-down screen's state.
#[derive(Clone, Debug)]
pub struct Drill {
    pub address: IpAddr,
    /// The alias or address, as the row showed it.
    pub name: String,
    pub pane: Pane,
    /// The address's services with their rates, kept while the peers are
    /// shown.
    pub services: ServicesPane,
    /// Whether every list read is complete (the table was never full).
    pub complete: bool,
    pub lines: Vec<PeerLine>,
    /// The latest failure to read, cleared by the next success.
    pub error: Option<String>,
    last: Option<PeerSample>,
}

fn counts(p: &PeerRow) -> (Counters, Counters) {
    (
        Counters::new(p.rx_packets, p.rx_bytes),
        Counters::new(p.tx_packets, p.tx_bytes),
    )
}

impl Drill {
    pub fn new(address: IpAddr, name: String) -> Self {
        Self {
            address,
            name,
            pane: Pane::Peers,
            services: ServicesPane::default(),
            complete: true,
            lines: Vec::new(),
            error: None,
            last: None,
        }
    }

    /// `s`: the other pane. The peers' last reading stays, so their first
    /// rates on the way back cover the time spent on the services.
    pub fn switch_pane(&mut self) {
        self.pane = match self.pane {
            Pane::Peers => Pane::Services,
            Pane::Services => Pane::Peers,
        };
    }

    /// Takes a new reading; a failed one keeps the last good one, so the
    /// next rates cover the whole gap.
    pub fn on_sample(&mut self, sample: Result<PeerSample, String>) {
        let sample = match sample {
            Ok(sample) => sample,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let before = self.last.as_ref().map(|b| {
            let by_peer = b.list.iter().flat_map(|a| {
                a.peers
                    .iter()
                    .map(|p| ((a.interface.clone(), p.peer), counts(p)))
            });
            Baseline::new(b.at, by_peer)
        });
        let mut lines: Vec<PeerLine> = sample
            .list
            .iter()
            .flat_map(|a| a.peers.iter().map(move |p| (a, p)))
            .map(|(a, p)| {
                let (rx, tx) = counts(p);
                let rates = before
                    .as_ref()
                    .map(|b| b.rates(sample.at, &(a.interface.clone(), p.peer), (rx, tx)));
                PeerLine {
                    interface: a.interface.clone(),
                    peer: p.peer,
                    rx,
                    tx,
                    last_seen: p.last_seen,
                    rates,
                }
            })
            .collect();
        // The busiest first, then the most recent.
        let busy = |l: &PeerLine| l.rates.map_or(0.0, |r| r.rx.bits + r.tx.bits);
        lines.sort_by(|a, b| {
            busy(b)
                .total_cmp(&busy(a))
                .then(b.last_seen.cmp(&a.last_seen))
                .then(a.peer.cmp(&b.peer))
        });
        self.complete = sample.list.iter().all(|a| a.complete);
        self.lines = lines;
        self.error = None;
        self.last = Some(sample);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{inventory::State, peers::time::parse_rfc3339};

    pub fn sample(at: Instant, k: u64) -> PeerSample {
        let stamp = |t| Stamp(parse_rfc3339(t).unwrap());
        let row = |peer: &str, rx: (u64, u64), tx: (u64, u64)| PeerRow {
            peer: peer.parse().unwrap(),
            rx_packets: rx.0,
            rx_bytes: rx.1,
            tx_packets: tx.0,
            tx_bytes: tx.1,
            first_seen: stamp("2026-11-30T08:00:00Z"),
            last_seen: stamp("2026-12-01T10:00:00Z"),
        };
        PeerSample {
            at,
            list: vec![AddressPeers {
                address: "192.0.2.10".parse().unwrap(),
                interface: "eth0".into(),
                alias: Some("api".into()),
                state: State::Documented,
                complete: true,
                last_traffic: Some(stamp("2026-12-01T10:00:00Z")),
                peers: vec![
                    row("203.0.113.7", (k * 100, k * 12_500), (k * 90, k * 125_000)),
                    row(
                        "2001:db8:1:2::/64",
                        (k * 10, k * 1_250),
                        (k * 10, k * 1_250),
                    ),
                    row("198.51.100.1", (7, 700), (0, 0)),
                ],
            }],
        }
    }

    #[test]
    fn rates_per_peer_busiest_first() {
        let t0 = Instant::now();
        let mut drill = Drill::new("192.0.2.10".parse().unwrap(), "api".into());
        drill.on_sample(Ok(sample(t0, 1)));
        assert!(drill.lines.iter().all(|l| l.rates.is_none()));
        drill.on_sample(Err("down".into()));
        assert_eq!(drill.error.as_deref(), Some("down"));
        drill.on_sample(Ok(sample(t0 + Duration::from_secs(2), 3)));
        let peers: Vec<String> = drill.lines.iter().map(|l| l.peer.to_string()).collect();
        assert_eq!(peers, ["203.0.113.7", "2001:db8:1:2::/64", "198.51.100.1"]);
        let first = drill.lines[0].rates.unwrap();
        // 200 packets and 25,000 bytes in 2 s.
        assert_eq!(first.rx.packets, 100.0);
        assert_eq!(first.rx.bits, 100_000.0);
        assert_eq!(drill.lines[2].rates.unwrap().rx.packets, 0.0);
        assert_eq!(drill.error, None);
    }
}
