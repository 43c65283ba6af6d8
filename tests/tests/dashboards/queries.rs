//! Every panel and variable query of both dashboards, rendered for each
//! scenario and run the way Grafana sends it, against the facts and the
//! list of what this lab leaves empty.

use std::{collections::BTreeSet, path::Path};

use anyhow::{Context, Result, ensure};
use lab::{
    Netns,
    grafana::{self, Query, Scenario, Selection, TimeRange, Variable},
    http,
    prometheus::Prometheus,
};

use crate::{
    answer::Answer,
    facts::FACTS,
    plan::{A, BILLING, FLEET, IFACE, JOB, MAIN, instance},
};

/// Queries this lab legitimately leaves empty, in every scenario, and why.
/// Each must come back empty: data there means the lab or the exporter
/// changed and the entry is stale. (The overflow panels are not here: the
/// daemon creates its overflow counters at 0 when it attaches, so they have
/// data, which must be all zeros; see the facts.)
/// (scenario, or `None` for every scenario; dashboard; title; refId; why).
const EMPTY_HERE: [(Option<&str>, &str, &str, &str, &str); 2] = [
    (
        None,
        FLEET,
        "Holders of every documented alias",
        "B",
        "it counts holders on lo (direct server return), and no lab host has an alias on lo",
    ),
    (
        Some("single"),
        MAIN,
        "Documented aliases with no traffic for 30 days",
        "A",
        "the one alias picked (web-a) has traffic; under All the aliases without peers show",
    ),
];

fn allowed_empty(scenario: &str, dashboard: &str, q: &Query) -> Option<&'static str> {
    EMPTY_HERE
        .iter()
        .find(|(s, d, t, r, _)| {
            s.is_none_or(|s| s == scenario) && *d == dashboard && *t == q.title && *r == q.ref_id
        })
        .map(|e| e.4)
}

/// What each variable is set to in a scenario: "all" is every drop-down
/// on All (the fleet view's single-value Alias on the VIP); "single" is one
/// instance, interface, owner and alias of host A.
fn pick(scenario: &str, dashboard: &str, var: &Variable) -> Selection {
    let one = |v: &str| Selection::Values(vec![v.to_owned()]);
    match (scenario, dashboard, var.name.as_str()) {
        ("all", FLEET, "alias") => one("vip"),
        ("all", _, _) => Selection::All,
        (_, FLEET, "alias") => one("web-a"),
        (_, _, "job") => one(JOB),
        (_, _, "instance") => one(&instance(&A)),
        (_, _, "interface") => one(IFACE),
        (_, _, "owner") => one("web-team"),
        (_, _, "alias") => one("web-a"),
        _ => Selection::All,
    }
}

/// Renders every query variable of `dashboard` for `scenario`, in order,
/// each from the options its own query finds at `at` (Grafana asks the
/// series API over the time range; an instant query at its end sees the
/// same series here, since none of them ends before it).
fn resolve(
    prom: &Prometheus<'_>,
    dashboard: &Path,
    name: &str,
    range: &TimeRange,
    at: f64,
) -> Result<Scenario> {
    let file = file_name(dashboard);
    let mut scenario = Scenario::new(name, range.builtins());
    for var in grafana::variables(dashboard)? {
        if var.kind != "query" {
            continue;
        }
        let queries = grafana::queries(dashboard, &scenario)?;
        let title = format!("${}", var.name);
        let q = queries
            .iter()
            .find(|q| q.source == "variable" && q.title == title)
            .with_context(|| format!("{file}: no query for {title}"))?;
        grafana::fully_substituted(q)?;
        let label = q
            .label
            .as_deref()
            .context("a variable query names its label")?;
        let options: BTreeSet<String> = prom
            .query(&q.expr, Some(at))?
            .into_iter()
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        let options: Vec<String> = options.into_iter().collect();
        let selection = pick(name, file, &var);
        if let Selection::Values(values) = &selection {
            for v in values {
                ensure!(
                    options.contains(v),
                    "{file}: {title} offers {options:?}, not {v}"
                );
            }
        }
        scenario.select(&var, &selection, &options)?;
    }
    Ok(scenario)
}

fn file_name(path: &Path) -> &'static str {
    match path.file_name().and_then(|f| f.to_str()) {
        Some(MAIN) => MAIN,
        Some(FLEET) => FLEET,
        Some(BILLING) => BILLING,
        _ => "?",
    }
}

/// Runs every query of every dashboard in both scenarios; the failures,
/// each a line or a few (none: all went as the lab says).
pub fn check_all(prom: &Prometheus<'_>, range: &TimeRange, moved_at: f64) -> Result<Vec<String>> {
    // Which (fact, ref id) a query has checked: each must be found.
    let mut checked: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut failures = Vec::new();
    let (mut evaluated, mut empty) = (0, Vec::new());
    for scenario in ["all", "single"] {
        for file in [MAIN, FLEET, BILLING] {
            let dashboard = grafana::dashboards_dir().join(file);
            let rendered = resolve(prom, &dashboard, scenario, range, range.to)?;
            let queries = grafana::queries(&dashboard, &rendered)?;
            println!("  {scenario} / {file}: {} queries", queries.len());
            for q in &queries {
                let name = format!("{scenario} / {file} / {} {}", q.title, q.ref_id);
                if let Err(e) = grafana::fully_substituted(q) {
                    failures.push(format!("{name}: {e:#}"));
                    continue;
                }
                evaluated += 1;
                let answer = match evaluate(prom, q, range) {
                    Ok(answer) => answer,
                    Err(e) => {
                        failures.push(format!("{name}: failed: {e:#}\n    {}", q.expr));
                        continue;
                    }
                };
                match (allowed_empty(scenario, file, q), answer.len()) {
                    (Some(why), 0) => empty.push(format!("{name}: {why}")),
                    (Some(_), n) => failures.push(format!(
                        "{name}: listed as empty in this lab but returned {n} series; remove it from EMPTY_HERE\n    {}\n    {answer:?}",
                        q.expr
                    )),
                    (None, 0) => failures.push(format!(
                        "{name}: no data, although the lab produced it\n    {}",
                        q.expr
                    )),
                    (None, _) => {}
                }
                for (i, f) in FACTS.iter().enumerate() {
                    let Some(j) = f.ref_ids.iter().position(|r| *r == q.ref_id) else {
                        continue;
                    };
                    if (f.scenario, f.dashboard, f.title) != (scenario, file, q.title.as_str()) {
                        continue;
                    }
                    checked.insert((i, j));
                    match f.check(&answer, moved_at) {
                        Ok(()) => println!("    ok: {name}: {}", f.says),
                        Err(e) => failures.push(format!(
                            "{name}: should show {}: {e:#}\n    {}",
                            f.says, q.expr
                        )),
                    }
                }
            }
        }
    }
    for (i, f) in FACTS.iter().enumerate() {
        for (j, r) in f.ref_ids.iter().enumerate() {
            if !checked.contains(&(i, j)) {
                failures.push(format!(
                    "no query {} / {} / {} {r} for the fact \"{}\"",
                    f.scenario, f.dashboard, f.title, f.says
                ));
            }
        }
    }
    println!(
        "  {evaluated} queries evaluated, {} empty as expected:",
        empty.len()
    );
    for e in &empty {
        println!("    {e}");
    }
    Ok(failures)
}

/// Runs `q` as Grafana would: an instant query at the end of the range, or
/// a range query over it with `$__interval` as the step.
fn evaluate(prom: &Prometheus<'_>, q: &Query, range: &TimeRange) -> Result<Answer> {
    if q.instant {
        Ok(Answer::Vector(prom.query(&q.expr, Some(range.to))?))
    } else {
        let (start, end) = range.aligned();
        Ok(Answer::Matrix(prom.query_range(
            &q.expr,
            start,
            end,
            range.interval(),
        )?))
    }
}

/// Every rule of both files evaluates without error on the lab's data.
pub fn rules_healthy(prom: &Prometheus<'_>, ns: &Netns) -> Result<usize> {
    let response = http::get(ns, prom.web(), "/api/v1/rules")?;
    let body: serde_json::Value = serde_json::from_str(response.text()?)?;
    let rules: Vec<&serde_json::Value> = body["data"]["groups"]
        .as_array()
        .context("no rule groups")?
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{} ({}): {}", r["name"], r["health"], r["lastError"]))
        .collect();
    ensure!(
        !rules.is_empty() && unhealthy.is_empty(),
        "rules that do not evaluate cleanly: {unhealthy:#?}"
    );
    Ok(rules.len())
}
