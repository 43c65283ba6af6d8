//! `promtool check metrics` on a scrape after traffic.

use anyhow::{Result, ensure};
use lab::{
    harness::{Case, Outcome},
    http, prometheus,
};

use crate::lab::ExporterLab;

pub const CASE: Case = ("promtool_check_metrics_is_clean", run);

fn run() -> Result<Outcome> {
    let lab = ExporterLab::new()?;
    // Traffic first, so that every family with labels has series.
    lab.send_plan()?;
    lab.send_non_ip()?;
    let response = http::get(lab.ns(), lab.listen(), "/metrics")?;
    ensure!(response.status == 200, "/metrics: {}", response.status);
    ensure!(
        response.header("content-type") == Some("text/plain; version=0.0.4; charset=utf-8"),
        "content type {:?}",
        response.header("content-type")
    );
    let text = response.text()?;
    let (code, output) = prometheus::promtool_check_metrics(text)?;
    println!(
        "  promtool check metrics on {} lines: exit {code}, {:?}",
        text.lines().count(),
        output
    );
    ensure!(
        code == 0 && output.trim().is_empty(),
        "promtool check metrics (exit {code}):\n{output}\non:\n{text}"
    );
    lab.stop()?;
    Ok(Outcome::Passed)
}
