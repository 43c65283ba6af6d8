//! Foreign addresses (neither on this host nor documented): the series
//! budget that bounds their cardinality (`budget`), the eviction of their
//! idle map entries (`evict`), and when and how eviction runs (`janitor`).

mod budget;
pub mod evict;
mod janitor;

pub use budget::{ForeignBudget, Split};
pub use janitor::Janitor;
