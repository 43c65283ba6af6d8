//! A real Prometheus scrapes the daemon over HTTPS with basic auth and a CA
//! it trusts, and gets the exact counts; a job with a wrong password and a
//! job over plain HTTP fail (`up == 0`).

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, ensure};
use lab::{
    harness::{Outcome, check_eq},
    http, poll,
    prometheus::{Prometheus, Sample},
};

use crate::fixture::{ALIAS, Lab, PASSWORD, USER};

const GOOD: &str = "https_basic_auth";
const WRONG_PASSWORD: &str = "wrong_password";
const PLAIN: &str = "plain_http";

fn scrape_configs(lab: &Lab) -> String {
    let target = format!("      - targets: ['{}']\n", lab.listen);
    let tls = format!(
        "    scheme: https\n    tls_config:\n      ca_file: {}\n",
        lab.certs.ca.display()
    );
    format!(
        "  - job_name: {GOOD}\n{tls}    basic_auth:\n      username: {USER}\n      password_file: {}\n    static_configs:\n{target}\
         \x20 - job_name: {WRONG_PASSWORD}\n{tls}    basic_auth:\n      username: {USER}\n      password: 'not {PASSWORD}'\n    static_configs:\n{target}\
         \x20 - job_name: {PLAIN}\n    basic_auth:\n      username: {USER}\n      password_file: {}\n    static_configs:\n{target}",
        lab.password_file.display(),
        lab.password_file.display(),
    )
}

pub fn run() -> Result<Outcome> {
    let lab = Lab::new()?;
    let daemon = lab.start(&lab.write_web_config(&lab.web_config(""))?)?;
    let prom = Prometheus::start_with_scrape_configs(lab.ns(), &scrape_configs(&lab), &[])?;
    let (rx, tx) = lab.send()?;
    let at = prom.scraped_after(GOOD, lab.listen, SystemTime::now())?;
    for (family, count) in [("receive", rx), ("transmit", tx)] {
        for (unit, want) in [("packets", count.packets), ("bytes", count.bytes)] {
            let expr =
                format!("aliasstat_{family}_{unit}_total{{job=\"{GOOD}\",address=\"{ALIAS}\"}}");
            let got: Vec<f64> = prom
                .query(&expr, Some(at))?
                .iter()
                .map(|s| s.value)
                .collect();
            check_eq(&expr, &vec![want as f64], &got)?;
        }
    }
    println!("  {ALIAS}: rx {rx}, tx {tx}, as scraped over HTTPS with basic auth");

    for (job, error) in [(WRONG_PASSWORD, "401 Unauthorized"), (PLAIN, "")] {
        let up = poll::until(
            &format!("a scrape of job {job}"),
            Duration::from_secs(30),
            Duration::from_millis(200),
            || prom.query(&format!("up{{job=\"{job}\"}}"), None),
            |samples: &Vec<Sample>| !samples.is_empty(),
        )?;
        check_eq(
            &format!("up of job {job}"),
            &vec![0.0],
            &up.iter().map(|s| s.value).collect(),
        )?;
        let last_error = last_error(&lab, &prom, job)?;
        ensure!(
            !last_error.is_empty() && last_error.contains(error),
            "job {job}: Prometheus's lastError {last_error:?} should say {error:?}"
        );
        println!("  job {job}: up 0 ({last_error})");
    }
    // Failed handshakes and refused passwords did not hurt the daemon.
    prom.scraped_after(GOOD, lab.listen, SystemTime::now())?;
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// The `lastError` Prometheus shows for `job`'s target.
fn last_error(lab: &Lab, prom: &Prometheus<'_>, job: &str) -> Result<String> {
    let targets = http::get(lab.ns(), prom.web(), "/api/v1/targets")?;
    let doc: serde_json::Value = serde_json::from_slice(&targets.body)?;
    doc["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["labels"]["job"] == job)
        .and_then(|t| t["lastError"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no target of job {job} in {doc}"))
}
