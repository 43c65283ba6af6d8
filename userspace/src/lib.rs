//! aliasstat: per-address traffic accounting with eBPF.
//!
//! The folders follow the architecture: `bpf` puts the programs in the
//! kernel and reads what they counted, `inventory` knows what each address
//! is (on the host, in the alias file), `foreign` bounds what is exported of
//! addresses that are neither, `peers` knows who talks with each address,
//! `services` which cgroup sends and receives on it, `history` keeps what
//! each address carried per interval and reports on it, `serve` is the
//! exporter, `daemon` runs it all until it is told to stop, `commands` presents results for the
//! one-shot subcommands, and `top` is the live terminal view.

pub mod bpf;
pub mod commands;
pub mod daemon;
pub mod foreign;
pub mod history;
pub mod inventory;
pub mod peers;
pub mod serve;
pub mod services;
pub mod top;
