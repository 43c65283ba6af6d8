//! The kernel side as user space sees it: loading the object and pinning
//! its maps (`load`, `pins`), attaching its programs (`attach`), reading
//! the counters (`counters`), and the raw `bpf(2)` commands aya does not
//! wrap (`sys`).

pub mod attach;
pub mod counters;
pub mod load;
pub mod pins;
pub mod sys;
