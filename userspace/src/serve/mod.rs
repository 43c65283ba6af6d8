//! What the daemon serves: HTTP routing and limits (`http`), the JSON API
//! (`api`), the Prometheus collector (`metrics`), the live page (`web`)
//! with the rate history it shows (`rates`) and its long-range chart from
//! the history store (`history`), and the web config that
//! puts TLS (`tls`) and basic auth (`auth`) in front of all of them
//! (`web_config`).

pub mod api;
pub mod auth;
pub mod history;
pub mod http;
pub mod metrics;
pub mod rates;
pub mod tls;
pub mod web;
pub mod web_config;
