//! aliasstat: per-address traffic accounting with eBPF.
//!
//! The modules follow the data: `loader` puts the programs in the kernel,
//! `counters` reads what they counted, `inventory` knows what each address
//! is (on the host, in the alias file), and `daemon` runs it all until it
//! is told to stop. `dump`, `aliases` and `check` present results for the
//! commands of the same names; `interfaces` and `table` are small helpers.

pub mod aliases;
pub mod attach;
pub mod check;
pub mod counters;
pub mod daemon;
pub mod dump;
pub mod evict;
pub mod foreign;
pub mod http;
pub mod interfaces;
pub mod inventory;
pub mod live;
pub mod loader;
pub mod metrics;
pub mod pins;
pub mod sys;
pub mod table;
pub mod top;
