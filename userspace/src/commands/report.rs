//! `aliasstat report`'s output: a table, CSV or JSON of the same rows.

use std::fmt::Write as _;

use serde_json::json;

use super::table;
use crate::history::{
    period::format_ms,
    report::{By, Report, Row},
};

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table_text(report),
        Format::Csv => csv(report),
        Format::Json => json(report),
    }
}

/// The percentile column's name: `p95_max_bps`.
fn percentile_column(report: &Report) -> String {
    let q = report.query;
    format!("p{}_{}_bps", q.percentile, q.rule.as_str()).replace('.', "_")
}

fn percentile_cell(row: &Row) -> String {
    row.percentile_bps
        .map_or_else(String::new, |v| format!("{v:.0}"))
}

fn coverage(report: &Report) -> String {
    let step = report.step_ms.map_or(String::from("no intervals"), |s| {
        format!("{} s intervals", s / 1000)
    });
    let percent = if report.total > 0 {
        100.0 * report.sampled as f64 / report.total as f64
    } else {
        0.0
    };
    format!(
        "{} to {}, {step}: {} of {} with samples ({percent:.1}%)",
        format_ms(report.query.from_ms),
        format_ms(report.query.to_ms),
        report.sampled,
        report.total
    )
}

fn table_text(report: &Report) -> String {
    let by = report.query.by;
    let mut rows = vec![[
        by.as_str().to_uppercase(),
        "OWNER".into(),
        "IN PACKETS".into(),
        "IN BYTES".into(),
        "OUT PACKETS".into(),
        "OUT BYTES".into(),
        percentile_column(report).to_uppercase(),
    ]];
    for r in &report.rows {
        let name = if r.name.is_empty() {
            "(undocumented)".into()
        } else {
            r.name.clone()
        };
        let owner = if by == By::Alias {
            r.owner.clone()
        } else {
            String::new()
        };
        rows.push([
            name,
            owner,
            r.rx.packets.to_string(),
            r.rx.bytes.to_string(),
            r.tx.packets.to_string(),
            r.tx.bytes.to_string(),
            percentile_cell(r),
        ]);
    }
    let mut out = coverage(report);
    out.push('\n');
    out.push_str(&table::render(
        &rows,
        [false, false, true, true, true, true, true],
    ));
    out
}

/// RFC 4180: a field with a comma, quote or line break is quoted.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv(report: &Report) -> String {
    let mut out = format!(
        "{},owner,in_packets,in_bytes,out_packets,out_bytes,{},intervals_sampled,intervals_total\n",
        report.query.by.as_str(),
        percentile_column(report)
    );
    for r in &report.rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            csv_field(&r.name),
            csv_field(&r.owner),
            r.rx.packets,
            r.rx.bytes,
            r.tx.packets,
            r.tx.bytes,
            percentile_cell(r),
            report.sampled,
            report.total
        );
    }
    out
}

fn json(report: &Report) -> String {
    let q = report.query;
    let rows: Vec<_> = report
        .rows
        .iter()
        .map(|r| {
            json!({
                q.by.as_str(): r.name,
                "owner": r.owner,
                "in": {"packets": r.rx.packets, "bytes": r.rx.bytes},
                "out": {"packets": r.tx.packets, "bytes": r.tx.bytes},
                "percentile_bits_per_second": r.percentile_bps,
            })
        })
        .collect();
    json!({
        "from": format_ms(q.from_ms),
        "to": format_ms(q.to_ms),
        "by": q.by,
        "percentile": q.percentile.to_string(),
        "direction": q.rule,
        "interval_seconds": report.step_ms.map(|s| s / 1000),
        "intervals": {"sampled": report.sampled, "total": report.total},
        "rows": rows,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use common::Counters;

    use super::*;
    use crate::history::{
        percentile::{Percentile, Rule},
        report::Query,
    };

    fn report() -> Report {
        Report {
            query: Query {
                from_ms: 0,
                to_ms: 600_000,
                by: By::Alias,
                percentile: Percentile::P95,
                rule: Rule::Max,
            },
            step_ms: Some(300_000),
            sampled: 1,
            total: 2,
            rows: vec![Row {
                name: "shop, \"tls\"".into(),
                owner: "web".into(),
                rx: Counters::new(3, 426),
                tx: Counters::new(1, 60),
                percentile_bps: Some(11.36),
            }],
        }
    }

    #[test]
    fn formats() {
        let r = report();
        assert_eq!(
            csv(&r),
            "alias,owner,in_packets,in_bytes,out_packets,out_bytes,p95_max_bps,intervals_sampled,intervals_total\n\"shop, \"\"tls\"\"\",web,3,426,1,60,11,1,2\n"
        );
        let text = table_text(&r);
        assert!(text.starts_with("1970-01-01T00:00:00Z to 1970-01-01T00:10:00Z, 300 s intervals: 1 of 2 with samples (50.0%)\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["rows"][0]["alias"], "shop, \"tls\"");
        assert_eq!(v["rows"][0]["in"]["bytes"], 426);
        assert_eq!(v["intervals"]["sampled"], 1);
        assert_eq!(v["direction"], "max");
    }
}
