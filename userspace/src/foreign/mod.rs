//! Foreign addresses (neither on this host nor documented): the series
//! budget that bounds their cardinality (`budget`), the eviction of their
//! idle map entries (`evict`), and when and how eviction runs (`janitor`).

mod budget;
pub mod evict;
pub(crate) mod janitor;

pub use budget::{ForeignBudget, Split};
pub use janitor::Janitor;

/// One address counter: interface, direction and address, whichever map
/// of whichever layout holds it.
pub type EntryKey = (u32, common::Direction, std::net::IpAddr);

/// A received count for `ip` on ifindex 2, for the budget's and the
/// evictor's tests.
#[cfg(test)]
fn rx(ip: &str, packets: u64, bytes: u64) -> crate::bpf::counters::AddressCount {
    crate::bpf::counters::AddressCount {
        ifindex: 2,
        direction: common::Direction::Rx,
        address: ip.parse().unwrap(),
        counters: common::Counters::new(packets, bytes),
    }
}
