//! User-space views of [`ServiceKey`].

use std::net::IpAddr;

use crate::{Direction, Family, ServiceKey};

// SAFETY: `repr(C)`, fully initialised and `bytemuck::Pod`, which checks
// that it has no padding or invalid values.
unsafe impl aya::Pod for ServiceKey {}

impl ServiceKey {
    /// The key of `addr` as the kernel side writes it.
    pub fn of(cgroup: u64, ifindex: u32, direction: Direction, addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => {
                let mut bytes = [0; 16];
                bytes[..4].copy_from_slice(&a.octets());
                Self::new(cgroup, ifindex, direction, Family::Ipv4, bytes)
            }
            IpAddr::V6(a) => Self::new(cgroup, ifindex, direction, Family::Ipv6, a.octets()),
        }
    }

    /// The address, or `None` for a family byte the program never writes.
    pub fn ip(&self) -> Option<IpAddr> {
        crate::key::user::ip_of(self.family, self.addr)
    }

    pub fn dir(&self) -> Option<Direction> {
        Direction::from_u8(self.direction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_key_round_trips() {
        for addr in ["10.0.0.5", "2001:db8::5"] {
            let ip: IpAddr = addr.parse().unwrap();
            let key = ServiceKey::of(7, 2, Direction::Rx, ip);
            assert_eq!(
                (key.ip(), key.dir(), key.cgroup),
                (Some(ip), Some(Direction::Rx), 7)
            );
        }
        let mut key = ServiceKey::of(7, 2, Direction::Tx, "10.0.0.5".parse().unwrap());
        key.family = 0;
        assert_eq!(key.ip(), None);
    }
}
