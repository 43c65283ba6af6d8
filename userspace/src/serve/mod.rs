//! What the daemon serves: HTTP routing and limits (`http`), the JSON API
//! (`api`) and the Prometheus collector (`metrics`).

pub mod api;
pub mod http;
pub mod metrics;
