//! The Grafana dashboards in `dashboards/` as a Grafana would query them:
//! every panel and variable expression with its variables substituted, and
//! the time range turned into `$__range`, `$__interval` and
//! `$__rate_interval`, so a real Prometheus can run them.
//!
//! Extraction and substitution are `dashboards/queries.jq`, the very script
//! `dashboards/check.sh` runs, so the two never disagree about what a
//! dashboard asks. This module only renders variable values the way
//! Grafana's Prometheus data source does (regex escaping, "All") into the
//! scenario that script takes, and computes the built-in variables.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::cmd;

/// `dashboards/` of this workspace.
pub fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// One template variable of a dashboard, as far as rendering it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    /// `query`, `datasource`, `custom`, ...
    pub kind: String,
    pub multi: bool,
    pub include_all: bool,
    /// What "All" renders as; `None`: every option, as an alternation.
    pub all_value: Option<String>,
}

impl Variable {
    /// Grafana renders a multi-value or include-All variable for a regex
    /// matcher (escaped, alternations), any other one as its raw value.
    pub fn is_regex(&self) -> bool {
        self.multi || self.include_all
    }
}

#[derive(Deserialize)]
struct Dashboard {
    templating: Templating,
}

#[derive(Deserialize)]
struct Templating {
    list: Vec<RawVariable>,
}

#[derive(Deserialize)]
struct RawVariable {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    multi: bool,
    #[serde(default, rename = "includeAll")]
    include_all: bool,
    #[serde(default, rename = "allValue")]
    all_value: Option<String>,
}

/// The template variables of `dashboard`, in the order Grafana resolves
/// them (each may refer only to those before it).
pub fn variables(dashboard: &Path) -> Result<Vec<Variable>> {
    let text = std::fs::read_to_string(dashboard)
        .with_context(|| format!("failed to read {}", dashboard.display()))?;
    let parsed: Dashboard = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a dashboard", dashboard.display()))?;
    Ok(parsed
        .templating
        .list
        .into_iter()
        .map(|v| Variable {
            name: v.name,
            kind: v.kind,
            multi: v.multi,
            include_all: v.include_all,
            // Grafana treats an empty allValue like none.
            all_value: v.all_value.filter(|a| !a.is_empty()),
        })
        .collect())
}

/// What a user picked in a variable's drop-down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    Values(Vec<String>),
}

/// The `$scenario` argument of `queries.jq`: every variable already
/// rendered as it appears in the query text.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scenario {
    pub name: String,
    /// Multi-value and include-All variables, rendered for `=~"..."`.
    pub regex: BTreeMap<String, String>,
    /// Single-value variables, as they are.
    pub plain: BTreeMap<String, String>,
    /// `__range`, `__interval`, `__rate_interval`.
    pub builtin: BTreeMap<String, String>,
}

impl Scenario {
    pub fn new(name: &str, builtin: BTreeMap<String, String>) -> Self {
        Self {
            name: name.to_owned(),
            builtin,
            ..Self::default()
        }
    }

    /// Renders `selection` of `var`, whose options (the values its query
    /// found) are `options`, the way Grafana's Prometheus data source
    /// interpolates it.
    pub fn select(
        &mut self,
        var: &Variable,
        selection: &Selection,
        options: &[String],
    ) -> Result<()> {
        if !var.is_regex() {
            let Selection::Values(values) = selection else {
                bail!("${} has no \"All\"", var.name);
            };
            let [value] = &values[..] else {
                bail!("${} takes exactly one value, not {values:?}", var.name);
            };
            self.plain.insert(var.name.clone(), plain_escape(value));
            return Ok(());
        }
        let rendered = match (selection, &var.all_value) {
            (Selection::All, Some(all)) => all.clone(),
            (Selection::All, None) => alternation(options),
            (Selection::Values(values), _) => alternation(values),
        };
        self.regex.insert(var.name.clone(), rendered);
        Ok(())
    }
}

/// Grafana's `prometheusSpecialRegexEscape`: a value that goes inside a
/// regex matcher's double-quoted string, so a regex metacharacter gets a
/// backslash that itself is escaped for the string (`.` becomes `\\.`).
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str(r"\\");
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Grafana's `prometheusRegularEscape`, for a variable that is neither
/// multi-value nor include-All.
pub fn plain_escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('\'', r"\\'")
}

/// Several values of a regex variable: one escaped value alone, more as
/// `(a|b)`, as Grafana renders them.
pub fn alternation(values: &[String]) -> String {
    let escaped: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
    match &escaped[..] {
        [one] => one.clone(),
        _ => format!("({})", escaped.join("|")),
    }
}

/// One expression of a dashboard, as `queries.jq` writes it.
#[derive(Clone, Debug, Deserialize)]
pub struct Query {
    pub dashboard: String,
    /// `panel` or `variable`.
    pub source: String,
    /// The panel's title, or `$name` of a variable.
    pub title: String,
    #[serde(rename = "refId")]
    pub ref_id: String,
    /// Grafana runs it as an instant query (stat, table, bar gauge,
    /// variable), else as a range query (time series, state timeline).
    pub instant: bool,
    /// As written in the dashboard.
    pub raw: String,
    /// With the scenario's variables substituted.
    pub expr: String,
    /// For a variable: the label whose values are its options.
    pub label: Option<String>,
}

/// Every expression of `dashboard` under `scenario`, by running
/// `jq -f dashboards/queries.jq` (needs jq; `cargo xtask setup` installs
/// it).
pub fn queries(dashboard: &Path, scenario: &Scenario) -> Result<Vec<Query>> {
    let script = dashboards_dir().join("queries.jq");
    let out = cmd::run(
        Command::new("jq")
            .arg("-c")
            .arg("--argjson")
            .arg("scenario")
            .arg(serde_json::to_string(scenario)?)
            .arg("-f")
            .arg(&script)
            .arg(dashboard),
    )
    .context("failed to extract the dashboard's queries (is jq installed? `cargo xtask setup` installs it)")?;
    out.lines()
        .map(|line| {
            serde_json::from_str(line)
                .with_context(|| format!("unexpected queries.jq output: {line}"))
        })
        .collect()
}

/// Grafana's `rangeutil.roundInterval`: the "nice" interval (in ms) that
/// a raw `range / max data points` is rounded to.
pub fn round_interval(ms: f64) -> f64 {
    const LADDER: [(f64, f64); 29] = [
        (10.0, 1.0),
        (15.0, 10.0),
        (35.0, 20.0),
        (75.0, 50.0),
        (150.0, 100.0),
        (350.0, 200.0),
        (750.0, 500.0),
        (1_500.0, 1_000.0),
        (3_500.0, 2_000.0),
        (7_500.0, 5_000.0),
        (12_500.0, 10_000.0),
        (17_500.0, 15_000.0),
        (25_000.0, 20_000.0),
        (45_000.0, 30_000.0),
        (90_000.0, 60_000.0),
        (210_000.0, 120_000.0),
        (450_000.0, 300_000.0),
        (750_000.0, 600_000.0),
        (1_050_000.0, 900_000.0),
        (1_500_000.0, 1_200_000.0),
        (2_700_000.0, 1_800_000.0),
        (5_400_000.0, 3_600_000.0),
        (9_000_000.0, 7_200_000.0),
        (16_200_000.0, 10_800_000.0),
        (32_400_000.0, 21_600_000.0),
        (86_400_000.0, 43_200_000.0),
        (604_800_000.0, 86_400_000.0),
        (1_814_400_000.0, 604_800_000.0),
        (3_628_800_000.0, 2_592_000_000.0),
    ];
    LADDER
        .iter()
        .find(|(below, _)| ms < *below)
        .map_or(31_536_000_000.0, |(_, nice)| *nice)
}

/// A dashboard time range and what Grafana derives from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeRange {
    /// Seconds since the epoch.
    pub from: f64,
    pub to: f64,
    /// The data source's "Scrape interval" setting, in seconds: the lower
    /// bound of `$__interval` and the base of `$__rate_interval`.
    pub scrape_interval: f64,
    /// A panel's data points: Grafana uses its width in pixels.
    pub max_data_points: f64,
}

impl TimeRange {
    /// `$__interval` in seconds, which is also a range query's step.
    pub fn interval(&self) -> f64 {
        let raw_ms = (self.to - self.from) * 1000.0 / self.max_data_points;
        (round_interval(raw_ms) / 1000.0).max(self.scrape_interval)
    }

    /// `max($__interval + scrape interval, 4 * scrape interval)`, as
    /// Grafana defines it.
    pub fn rate_interval(&self) -> f64 {
        (self.interval() + self.scrape_interval).max(4.0 * self.scrape_interval)
    }

    /// `$__range`: the range in whole seconds.
    pub fn range(&self) -> f64 {
        (self.to - self.from).round()
    }

    /// The built-in variables, spelt as Grafana renders them.
    pub fn builtins(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("__range".to_owned(), duration(self.range())),
            ("__interval".to_owned(), duration(self.interval())),
            ("__rate_interval".to_owned(), duration(self.rate_interval())),
        ])
    }

    /// A range query's start and end, both rounded down to a multiple of
    /// the step as Grafana's `alignRange` does (in UTC).
    pub fn aligned(&self) -> (f64, f64) {
        let step = self.interval();
        (
            (self.from / step).floor() * step,
            (self.to / step).floor() * step,
        )
    }
}

/// A PromQL duration: whole seconds as `Ns`, anything finer as `Nms`.
pub fn duration(seconds: f64) -> String {
    if seconds.fract() == 0.0 {
        format!("{seconds}s")
    } else {
        format!("{}ms", (seconds * 1000.0).round())
    }
}

/// Fails unless `expr` has no variable left, naming where it came from.
pub fn fully_substituted(q: &Query) -> Result<()> {
    ensure!(
        !q.expr.contains('$') && !q.expr.contains("[["),
        "{} / {} {}: a variable the scenario does not know is left: {}",
        q.dashboard,
        q.title,
        q.ref_id,
        q.expr
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_grafana() {
        for (value, regex, plain) in [
            ("lab-srv", "lab-srv", "lab-srv"),
            ("10.0.0.1:9864", r"10\\.0\\.0\\.1:9864", "10.0.0.1:9864"),
            ("bond0.100", r"bond0\\.100", "bond0.100"),
            (r"a\b", r"a\\\\b", r"a\\b"),
            ("x(y)|z", r"x\\(y\\)\\|z", "x(y)|z"),
            ("it's", "it's", r"it\\'s"),
        ] {
            assert_eq!(regex_escape(value), regex, "{value}");
            assert_eq!(plain_escape(value), plain, "{value}");
        }
    }

    #[test]
    fn renders_selections() {
        let var = |multi, all: Option<&str>| Variable {
            name: "v".into(),
            kind: "query".into(),
            multi,
            include_all: true,
            all_value: all.map(str::to_owned),
        };
        let options = ["a.b".to_owned(), "c".to_owned()];
        let render = |v: &Variable, s: Selection| {
            let mut scenario = Scenario::default();
            scenario.select(v, &s, &options).unwrap();
            scenario.regex["v"].clone()
        };
        assert_eq!(render(&var(true, Some(".*")), Selection::All), ".*");
        assert_eq!(render(&var(true, None), Selection::All), r"(a\\.b|c)");
        assert_eq!(
            render(&var(true, None), Selection::Values(vec!["c".into()])),
            "c"
        );
        let single = Variable {
            multi: false,
            include_all: false,
            ..var(false, None)
        };
        let mut scenario = Scenario::default();
        scenario
            .select(&single, &Selection::Values(vec!["a.b".into()]), &options)
            .unwrap();
        assert_eq!(scenario.plain["v"], "a.b");
        assert!(scenario.select(&single, &Selection::All, &options).is_err());
    }

    #[test]
    fn derives_intervals_like_grafana() {
        let range = |seconds: f64, scrape: f64| TimeRange {
            from: 1_700_000_000.0,
            to: 1_700_000_000.0 + seconds,
            scrape_interval: scrape,
            max_data_points: 1000.0,
        };
        // Six hours on a 1000 px panel: 21.6 s rounds to 20 s.
        let six_hours = range(21_600.0, 15.0);
        assert_eq!(six_hours.interval(), 20.0);
        assert_eq!(six_hours.rate_interval(), 60.0);
        assert_eq!(six_hours.builtins()["__range"], "21600s");
        // Two minutes: far below the scrape interval, which wins.
        let lab = range(123.4, 1.0);
        assert_eq!(
            (lab.interval(), lab.rate_interval(), lab.range()),
            (1.0, 4.0, 123.0)
        );
        assert_eq!(round_interval(5.0), 1.0);
        assert_eq!(round_interval(1e12), 31_536_000_000.0);
        assert_eq!(duration(0.5), "500ms");
        let (start, end) = TimeRange {
            from: 1000.5,
            to: 1999.0,
            ..range(0.0, 15.0)
        }
        .aligned();
        assert_eq!((start, end), (990.0, 1995.0));
    }
}
