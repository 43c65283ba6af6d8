//! The services pane of the drill-down: `s` switches from an address's
//! peers to the services (cgroups, systemd units) that received on and
//! sent from it, with their rates between two readings of
//! `/api/v1/services` and their counts since the daemon attached (as
//! `aliasstat services` counts them), and what arrived that none took.
//! Like `state`, nothing here draws, sleeps or reads a clock.

use std::{net::IpAddr, time::Instant};

use common::Counters;
use hyper::StatusCode;

use super::{
    chain,
    client::ClientError,
    state::{Baseline, Rates},
};
use crate::services::{AddressServices, ServicesDoc};

/// One answer of the daemon, for one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServicesRead {
    /// The address on each interface it has traffic on, in the daemon's
    /// order (empty when it has none), read at `at`.
    Read {
        at: Instant,
        list: Vec<AddressServices>,
    },
    /// The daemon serves the matrix but counts no services; its words why.
    Off(String),
    /// The daemon has no `/api/v1/services` at all: older than per-service
    /// counting, or behind a proxy that does not pass the path on.
    NotServed,
    Failed(String),
}

impl ServicesRead {
    /// The daemon's answer at `at`, kept to `address`.
    pub fn of(address: IpAddr, at: Instant, answer: Result<ServicesDoc, ClientError>) -> Self {
        match answer {
            Ok(doc) => Self::Read {
                at,
                list: doc
                    .addresses
                    .into_iter()
                    .filter(|a| a.address == address)
                    .collect(),
            },
            Err(ClientError::Off { body, .. }) => Self::Off(body),
            // A 404 without the off header: a path this daemon never had.
            Err(ClientError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Self::NotServed,
            Err(e) => Self::Failed(chain(&e)),
        }
    }
}

/// Who took a line's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taker {
    /// A service: its unit, or its cgroup where it has none, and its
    /// processes.
    Service {
        label: String,
        processes: Vec<String>,
    },
    /// Received for the address, taken by no socket; never sent.
    Unserved,
}

/// One service (or the unserved traffic) of the address on one interface.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceLine {
    pub interface: String,
    pub taker: Taker,
    /// Since the daemon attached.
    pub rx: Counters,
    pub tx: Counters,
    /// None until there are two readings.
    pub rates: Option<Rates>,
}

/// What the pane says about its reading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Reading {
    /// Nothing read since the pane opened.
    #[default]
    Pending,
    Read,
    Off(String),
    NotServed,
    /// The latest reading failed; the lines are from the one before.
    Failed(String),
}

/// A line's key across readings: the interface and the cgroup, `None` for
/// the unserved line.
type LineKey = (String, Option<String>);

/// The pane's state: the lines of the latest reading, with rates since the
/// one before.
#[derive(Clone, Debug, Default)]
pub struct ServicesPane {
    pub reading: Reading,
    pub lines: Vec<ServiceLine>,
    last: Option<Baseline<LineKey>>,
}

impl ServicesPane {
    /// Takes an answer. A failed one keeps the last good reading, so the
    /// next rates cover the whole gap; one without services forgets it.
    pub fn on_read(&mut self, read: ServicesRead) {
        let (at, list) = match read {
            ServicesRead::Read { at, list } => (at, list),
            ServicesRead::Failed(e) => {
                self.reading = Reading::Failed(e);
                return;
            }
            ServicesRead::Off(why) => {
                self.forget(Reading::Off(why));
                return;
            }
            ServicesRead::NotServed => {
                self.forget(Reading::NotServed);
                return;
            }
        };
        let keyed: Vec<(LineKey, ServiceLine)> = list.into_iter().flat_map(lines).collect();
        self.lines = keyed
            .iter()
            .map(|(key, line)| ServiceLine {
                rates: self
                    .last
                    .as_ref()
                    .map(|b| b.rates(at, key, (line.rx, line.tx))),
                ..line.clone()
            })
            .collect();
        self.last = Some(Baseline::new(
            at,
            keyed.into_iter().map(|(key, l)| (key, (l.rx, l.tx))),
        ));
        self.reading = Reading::Read;
    }

    fn forget(&mut self, reading: Reading) {
        *self = Self {
            reading,
            ..Self::default()
        };
    }
}

/// The address's services on one interface, then its unserved line.
fn lines(a: AddressServices) -> impl Iterator<Item = (LineKey, ServiceLine)> {
    let interface = a.interface;
    let unserved = (
        (interface.clone(), None),
        ServiceLine {
            interface: interface.clone(),
            taker: Taker::Unserved,
            rx: Counters::new(a.unserved.rx_packets, a.unserved.rx_bytes),
            tx: Counters::default(),
            rates: None,
        },
    );
    a.services
        .into_iter()
        .map(move |s| {
            let line = ServiceLine {
                interface: interface.clone(),
                taker: Taker::Service {
                    label: s.label().to_owned(),
                    processes: s.processes,
                },
                rx: Counters::new(s.rx_packets, s.rx_bytes),
                tx: Counters::new(s.tx_packets, s.tx_bytes),
                rates: None,
            };
            ((interface.clone(), Some(s.cgroup)), line)
        })
        .chain([unserved])
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::services::{Service, Unserved};

    /// `api` (192.0.2.10) as two units, a slice and the root saw it, `k`
    /// times over, and another address that the pane leaves out.
    pub fn doc(k: u64) -> ServicesDoc {
        let service = |cgroup: &str, unit: Option<&str>, processes: &[&str], n: u64| Service {
            cgroup: cgroup.into(),
            unit: unit.map(Into::into),
            processes: processes.iter().map(|p| (*p).into()).collect(),
            rx_packets: k * n,
            rx_bytes: k * n * 1_400,
            tx_packets: k * n * 2,
            tx_bytes: k * n * 2 * 1_100,
        };
        let address = |ip: &str, services, unserved| AddressServices {
            address: ip.parse().unwrap(),
            interface: "eth0".into(),
            alias: None,
            services,
            unserved,
        };
        ServicesDoc {
            addresses: vec![
                address(
                    "192.0.2.10",
                    vec![
                        service(
                            "/system.slice/nginx.service",
                            Some("nginx.service"),
                            &["nginx"],
                            1_234,
                        ),
                        service(
                            "/system.slice/postfix.service",
                            Some("postfix.service"),
                            &["master", "smtpd"],
                            17,
                        ),
                        service("/user.slice/user-1000.slice", None, &[], 3),
                        // The root's processes are many: the column clips
                        // them, never the numbers.
                        service("/", None, &["systemd"; 40], 1),
                    ],
                    Unserved {
                        rx_packets: k * 42,
                        rx_bytes: k * 2_520,
                    },
                ),
                address("192.0.2.11", vec![], Unserved::default()),
            ],
        }
    }

    #[test]
    fn kept_to_the_address_and_off_told_apart() {
        let api = "192.0.2.10".parse().unwrap();
        let at = Instant::now();
        let ServicesRead::Read { list, .. } = ServicesRead::of(api, at, Ok(doc(1))) else {
            panic!("a document is a reading");
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].services.len(), 4);
        let url = "http://127.0.0.1:9864/api/v1/services";
        let body = "per-service counting is off (--services off, or no cgroup2 mount: see the daemon's log)";
        let off = ClientError::Off {
            url: url.into(),
            body: body.into(),
        };
        assert_eq!(
            ServicesRead::of(api, at, Err(off)),
            ServicesRead::Off(body.into())
        );
        let answered = |status| {
            ServicesRead::of(
                api,
                at,
                Err(ClientError::Status {
                    url: url.into(),
                    status,
                    body: "not found; see /".into(),
                }),
            )
        };
        assert_eq!(answered(StatusCode::NOT_FOUND), ServicesRead::NotServed);
        assert_eq!(
            answered(StatusCode::INTERNAL_SERVER_ERROR),
            ServicesRead::Failed(format!(
                "{url} answered 500 Internal Server Error: not found; see /"
            ))
        );
    }

    #[test]
    fn rates_per_service_and_unserved() {
        let api = "192.0.2.10".parse().unwrap();
        let t0 = Instant::now();
        let read = |s, k| ServicesRead::of(api, t0 + Duration::from_secs(s), Ok(doc(k)));
        let mut pane = ServicesPane::default();
        pane.on_read(read(0, 1));
        assert_eq!(pane.reading, Reading::Read);
        assert!(pane.lines.iter().all(|l| l.rates.is_none()));
        pane.on_read(ServicesRead::Failed("down".into()));
        assert_eq!(pane.reading, Reading::Failed("down".into()));
        // 2 s after the first good reading, everything counted 3 times over.
        pane.on_read(read(2, 3));
        assert_eq!(pane.lines.len(), 5);
        let nginx = pane.lines[0].rates.unwrap();
        assert_eq!(nginx.rx.packets, 1_234.0);
        assert_eq!(nginx.rx.bits, 1_234.0 * 1_400.0 * 8.0);
        assert_eq!(nginx.tx.packets, 2_468.0);
        let unserved = &pane.lines[4];
        assert_eq!(unserved.taker, Taker::Unserved);
        assert_eq!(unserved.rx, Counters::new(126, 7_560));
        assert_eq!(unserved.rates.unwrap().rx.packets, 42.0);
        // Turned off: nothing to take rates against any more.
        pane.on_read(ServicesRead::Off("off".into()));
        assert!(pane.lines.is_empty());
        pane.on_read(read(3, 3));
        assert!(pane.lines.iter().all(|l| l.rates.is_none()));
    }
}
