//! What the daemon serves: HTTP routing and limits (`http`), the
//! Prometheus collector (`metrics`), and the web config that puts TLS
//! (`tls`) and basic auth (`auth`) in front of both (`web_config`).

pub mod auth;
pub mod http;
pub mod metrics;
pub mod tls;
pub mod web_config;
