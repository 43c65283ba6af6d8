//! The same report from a Prometheus (or Thanos, or Mimir) query API:
//! `/api/v1/query_range` over steps of the report's interval, aligned to
//! it, one query per counter, summed by the report's grouping.
//!
//! Each step's value is the counter's increase over that step, written
//! `(c - c offset STEP >= 0) or increase(c[STEP])`: the difference of the
//! last samples at the step's two ends, which adds up over steps to
//! exactly the counter's change, and `increase()` only where the counter
//! was reset within the step (or the series began there). Plain
//! `increase(c[STEP])` extrapolates each step's change to the step's
//! edges, so its sum over a month is not the bytes that were counted
//! unless the scrapes fall exactly on the step boundaries.

use std::{collections::HashMap, time::Duration};

use serde::Deserialize;

use super::{
    codec::Traffic,
    period::format_ms,
    report::{Builder, By, Query, Report},
};
use crate::top::client::{Access, Client, ClientError};

/// A month of 5-minute steps is 8640 points per series, well under the
/// 11 000 that Prometheus allows a query_range; one query may still take
/// a while on a large Prometheus.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("the Prometheus query API at {url}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("{url} did not answer with a Prometheus query_range result")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Prometheus at {url} refused the query: {message}")]
    Query { url: String, message: String },
    #[error(
        "the period must start and end on a multiple of --step ({step_s} s) in UTC: {from} is not (months and days are, for any --step that divides a day)"
    )]
    Unaligned { from: String, step_s: i64 },
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: HashMap<String, String>,
    values: Vec<(f64, String)>,
}

/// Where a counter's value goes in a [`Traffic`].
type Field = fn(&mut Traffic) -> &mut u64;

/// The four counters, with where each goes.
const COUNTERS: [(&str, Field); 4] = [
    ("aliasstat_receive_packets_total", |t| &mut t.rx.packets),
    ("aliasstat_receive_bytes_total", |t| &mut t.rx.bytes),
    ("aliasstat_transmit_packets_total", |t| &mut t.tx.packets),
    ("aliasstat_transmit_bytes_total", |t| &mut t.tx.bytes),
];

/// The PromQL for one counter's per-step increase, summed by the
/// grouping. `owner` comes from `aliasstat_alias_info`; undocumented
/// addresses, which have none, keep an empty owner.
pub fn expression(counter: &str, by: By, step_s: i64, selector: &str) -> String {
    let c = format!("{counter}{selector}");
    let increase = format!("(({c} - {c} offset {step_s}s >= 0) or increase({c}[{step_s}s]))");
    let labels = match by {
        By::Alias => "alias, owner",
        By::Owner => "owner",
        By::Address => "address",
    };
    let join = "on(job, instance, address)";
    format!(
        "sum by ({labels}) (({increase} * {join} group_left(owner) aliasstat_alias_info) or {join} {increase})"
    )
}

/// The report from Prometheus at `url`; `selector` narrows the series
/// (`{job="aliasstat"}`), empty for all.
pub async fn report(
    url: &str,
    access: &Access,
    selector: &str,
    query: Query,
    step_ms: i64,
) -> Result<Report, PrometheusError> {
    if query.from_ms % step_ms != 0 || query.to_ms % step_ms != 0 {
        return Err(PrometheusError::Unaligned {
            from: format_ms(if query.from_ms % step_ms != 0 {
                query.from_ms
            } else {
                query.to_ms
            }),
            step_s: step_ms / 1000,
        });
    }
    let client = Client::new(url, access).map_err(|source| PrometheusError::Client {
        url: url.to_owned(),
        source,
    })?;
    // Per step end, per row (name, owner): the traffic of the step.
    let mut steps: HashMap<i64, HashMap<(String, String), Traffic>> = HashMap::new();
    for (counter, field) in COUNTERS {
        let expr = expression(counter, query.by, step_ms / 1000, selector);
        for series in query_range(&client, &expr, query, step_ms).await? {
            let name = series
                .metric
                .get(query.by.as_str())
                .cloned()
                .unwrap_or_default();
            let owner = series.metric.get("owner").cloned().unwrap_or_default();
            for (t, value) in series.values {
                let at = (t * 1000.0).round() as i64;
                let row = steps.entry(at).or_default();
                let traffic = row.entry((name.clone(), owner.clone())).or_default();
                // Counts are integers; increase() over a reset step can
                // come back as a float a hair off one.
                *field(traffic) = value
                    .parse::<f64>()
                    .map_or(0, |v| v.round().max(0.0) as u64);
            }
        }
    }
    let mut builder = Builder::new(query);
    let mut ends: Vec<i64> = steps.keys().copied().collect();
    ends.sort_unstable();
    for end in ends {
        let rows = &steps[&end];
        builder.interval(
            (end - step_ms, end, step_ms),
            rows.iter()
                .map(|((name, owner), t)| (name.as_str(), owner.as_str(), *t)),
        );
    }
    Ok(builder.finish())
}

async fn query_range(
    client: &Client,
    expr: &str,
    query: Query,
    step_ms: i64,
) -> Result<Vec<Series>, PrometheusError> {
    // The first step ends one step after the period starts: each value
    // covers the step before its timestamp.
    let path = format!(
        "/api/v1/query_range?query={}&start={}&end={}&step={}s",
        encode(expr),
        (query.from_ms + step_ms) / 1000,
        query.to_ms / 1000,
        step_ms / 1000
    );
    let url = client.url();
    let answer: Answer = match client.get_within(&path, QUERY_TIMEOUT).await {
        Ok(body) => serde_json::from_slice(&body).map_err(|source| PrometheusError::Json {
            url: url.clone(),
            source,
        })?,
        // Prometheus says what is wrong with a query in a JSON body; a
        // proxy or its web config (401, 403) answers in plain text.
        Err(ClientError::Status { status, body, .. }) => {
            serde_json::from_str(&body).map_err(|_| PrometheusError::Client {
                url: url.clone(),
                // The query's URL, a page of encoded PromQL, says nothing.
                source: ClientError::Status {
                    url: url.clone() + "/api/v1/query_range",
                    status,
                    body,
                },
            })?
        }
        Err(source) => return Err(PrometheusError::Client { url, source }),
    };
    match (answer.status.as_str(), answer.data) {
        ("success", Some(data)) => Ok(data.result),
        _ => Err(PrometheusError::Query {
            url,
            message: answer.error.unwrap_or(answer.status),
        }),
    }
}

/// Percent-encoding for a query string value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_join_the_owner() {
        assert_eq!(
            expression(
                "aliasstat_receive_bytes_total",
                By::Owner,
                300,
                r#"{job="a"}"#
            ),
            concat!(
                r#"sum by (owner) ((((aliasstat_receive_bytes_total{job="a"} - aliasstat_receive_bytes_total{job="a"} offset 300s >= 0) or increase(aliasstat_receive_bytes_total{job="a"}[300s]))"#,
                r#" * on(job, instance, address) group_left(owner) aliasstat_alias_info) or on(job, instance, address) ((aliasstat_receive_bytes_total{job="a"} - aliasstat_receive_bytes_total{job="a"} offset 300s >= 0) or increase(aliasstat_receive_bytes_total{job="a"}[300s])))"#
            )
        );
        assert_eq!(encode("a b{c=\"d\"}"), "a%20b%7Bc%3D%22d%22%7D");
    }
}
