//! The kernel side as user space sees it: loading the object with its maps
//! pinned (`load`), where the pins live and which map layouts they hold
//! (`pins`), attaching the programs (`attach`, with the clsact qdisc older
//! kernels need), opening and reading the counters (`counters`), the
//! kernel memory each map takes (`memory`), and every raw `bpf(2)` call
//! (`sys`). The possible-CPU count that sizes every
//! per-CPU value is [`cpus`].

use std::io;

pub mod attach;
pub mod counters;
pub mod load;
pub mod memory;
pub mod pins;
pub mod sys;

#[derive(Debug, thiserror::Error)]
#[error("failed to count the possible CPUs from `{path}`")]
pub struct CpusError {
    path: &'static str,
    #[source]
    source: io::Error,
}

/// The kernel's possible CPUs: the slots in every per-CPU map value.
pub fn cpus() -> Result<usize, CpusError> {
    aya::util::nr_cpus().map_err(|(path, source)| CpusError { path, source })
}
