//! Foreign addresses (neither on this host nor documented): the series
//! budget that bounds their cardinality (`budget`) and the eviction of
//! their idle map entries (`evict`).

mod budget;
pub mod evict;

pub use budget::{ForeignBudget, Split};
