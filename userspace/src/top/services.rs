//! The services pane of the drill-down: `s` switches from an address's
//! peers to the services (cgroups, systemd units) that received on and
//! sent from it, as `/api/v1/services` (and `aliasstat services`) counts
//! them since the daemon attached, and what arrived that none took.

use std::net::IpAddr;

use hyper::StatusCode;

use super::{chain, client::ClientError};
use crate::services::{AddressServices, ServicesDoc};

/// The latest reading of one address's services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ServicesRead {
    /// Nothing read since the pane opened.
    #[default]
    Pending,
    /// The daemon runs with `--services off`.
    Off,
    Failed(String),
    /// The address on each interface it has traffic on, in the daemon's
    /// order; empty when it has none.
    Read(Vec<AddressServices>),
}

impl ServicesRead {
    /// The daemon's answer, kept to `address`.
    pub fn of(address: IpAddr, answer: Result<ServicesDoc, ClientError>) -> Self {
        match answer {
            Ok(doc) => Self::Read(
                doc.addresses
                    .into_iter()
                    .filter(|a| a.address == address)
                    .collect(),
            ),
            // The daemon answers 404 for the matrix when it counts no
            // services; every other failure is worth its whole text.
            Err(ClientError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Self::Off,
            Err(e) => Self::Failed(chain(&e)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::services::{Service, Unserved};

    /// `api` (192.0.2.10) as two units, a slice and the root saw it, and another
    /// address that the pane leaves out.
    pub fn doc() -> ServicesDoc {
        let service = |cgroup: &str, unit: Option<&str>, processes: &[&str], n: u64| Service {
            cgroup: cgroup.into(),
            unit: unit.map(Into::into),
            processes: processes.iter().map(|p| (*p).into()).collect(),
            rx_packets: n,
            rx_bytes: n * 1_400,
            tx_packets: n * 2,
            tx_bytes: n * 2 * 1_100,
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
                        rx_packets: 42,
                        rx_bytes: 2_520,
                    },
                ),
                address("192.0.2.11", vec![], Unserved::default()),
            ],
        }
    }

    #[test]
    fn kept_to_the_address_and_off_told_apart() {
        let api = "192.0.2.10".parse().unwrap();
        let ServicesRead::Read(kept) = ServicesRead::of(api, Ok(doc())) else {
            panic!("a document is a reading");
        };
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].services.len(), 4);
        let answered = |status| {
            ServicesRead::of(
                api,
                Err(ClientError::Status {
                    url: "http://127.0.0.1:9864/api/v1/services".into(),
                    status,
                    body: "per-service counting is off (--services off)".into(),
                }),
            )
        };
        assert_eq!(answered(StatusCode::NOT_FOUND), ServicesRead::Off);
        assert_eq!(
            answered(StatusCode::INTERNAL_SERVER_ERROR),
            ServicesRead::Failed(
                "http://127.0.0.1:9864/api/v1/services answered 500 Internal Server Error: per-service counting is off (--services off)".into()
            )
        );
    }
}
