//! The kernel side as user space sees it: loading the object and pinning
//! its maps (`load`, `pins`), attaching its programs (`attach`), reading
//! the counters (`counters`), and the raw `bpf(2)` commands aya does not
//! wrap (`sys`).

use std::io;

pub mod attach;
pub mod counters;
pub mod load;
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
