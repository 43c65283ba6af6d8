//! What the daemon serves: HTTP routing and limits (`http`) and the
//! Prometheus collector (`metrics`).

pub mod http;
pub mod metrics;
