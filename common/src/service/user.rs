//! User-space views of the service keys: both families as one cell of the
//! address × service matrix.

use std::net::IpAddr;

use crate::{Direction, Service4Key, Service6Key};

// SAFETY: `repr(C)`, fully initialised and `bytemuck::Pod`, which checks
// that they have no padding or invalid values.
unsafe impl aya::Pod for Service4Key {}
// SAFETY: as above.
unsafe impl aya::Pod for Service6Key {}

/// What one key of either family counts: a cgroup's traffic on one local
/// address, interface and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceCell {
    pub cgroup: u64,
    pub ifindex: u32,
    pub direction: Direction,
    pub address: IpAddr,
}

impl From<Service4Key> for ServiceCell {
    fn from(key: Service4Key) -> Self {
        Self {
            cgroup: key.cgroup,
            ifindex: key.addr.ifindex(),
            direction: key.addr.dir(),
            address: key.addr.ip().into(),
        }
    }
}

impl From<Service6Key> for ServiceCell {
    fn from(key: Service6Key) -> Self {
        Self {
            cgroup: key.cgroup,
            ifindex: key.addr.ifindex(),
            direction: key.addr.dir(),
            address: key.addr.ip().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Addr6Key;

    #[test]
    fn service_keys_read_back_as_their_cell() {
        let v4 = Service4Key::new(7, 2, Direction::Rx, [10, 0, 0, 5]);
        let ip: std::net::Ipv6Addr = "2001:db8::5".parse().unwrap();
        let v6 = Service6Key::new(8, Addr6Key::new(3, Direction::Tx, ip.octets()));
        assert_eq!(
            [ServiceCell::from(v4), ServiceCell::from(v6)],
            [
                ServiceCell {
                    cgroup: 7,
                    ifindex: 2,
                    direction: Direction::Rx,
                    address: "10.0.0.5".parse().unwrap(),
                },
                ServiceCell {
                    cgroup: 8,
                    ifindex: 3,
                    direction: Direction::Tx,
                    address: ip.into(),
                },
            ]
        );
    }
}
