//! aliasstat: per-address traffic accounting with eBPF.
//!
//! The modules follow the data: `loader` puts the programs in the kernel,
//! `counters` reads what they counted, `dump` shows it, and `daemon` runs
//! the whole thing until it is told to stop. `interfaces` answers which
//! interfaces to watch and what their names are.

pub mod counters;
pub mod daemon;
pub mod dump;
pub mod interfaces;
pub mod loader;
