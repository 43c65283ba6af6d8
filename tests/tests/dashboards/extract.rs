//! The real dashboards through the real `queries.jq`: every query found
//! and fully substituted. Needs jq but neither root nor a namespace.

use std::process::Command;

use anyhow::Result;
use lab::{
    grafana::{self, Scenario, Selection, TimeRange},
    harness::Outcome,
};

pub fn run() -> Result<Outcome> {
    if Command::new("jq").arg("--version").output().is_err() {
        return Ok(Outcome::Skipped(
            "no jq on this machine (`cargo xtask setup` installs it)".to_owned(),
        ));
    }
    let dir = grafana::dashboards_dir();
    let builtin = TimeRange {
        from: 0.0,
        to: 3600.0,
        scrape_interval: 15.0,
        max_data_points: 1000.0,
    }
    .builtins();
    for file in [
        "aliasstat.json",
        "aliasstat-fleet.json",
        "aliasstat-billing.json",
    ] {
        let dashboard = dir.join(file);
        let mut scenario = Scenario::new("all", builtin.clone());
        for var in grafana::variables(&dashboard)? {
            match var.kind.as_str() {
                "datasource" => {}
                _ if var.is_regex() => {
                    scenario.select(&var, &Selection::All, &["x".to_owned()])?;
                }
                _ => scenario.select(&var, &Selection::Values(vec!["x".into()]), &[])?,
            }
        }
        let queries = grafana::queries(&dashboard, &scenario)?;
        assert!(queries.len() > 5, "{file}: {queries:#?}");
        for q in &queries {
            grafana::fully_substituted(q)?;
            if q.source == "panel" {
                assert!(q.label.is_none(), "{q:#?}");
            }
        }
    }
    Ok(Outcome::Passed)
}
