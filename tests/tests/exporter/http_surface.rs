//! The HTTP surface (404s, HEAD, 405, the JSON API) and 50 concurrent
//! scrapes that must all show the same exact counts.

use std::{
    net::SocketAddr,
    sync::{Arc, Barrier},
    thread,
};

use anyhow::{Context, Result, ensure};
use lab::{
    Netns,
    harness::{Case, Outcome},
    http, ip,
    prometheus::{Metric, parse_text},
};

use crate::lab::{Expected, ExporterLab, PLAN, alias_counters, expected_counters};

pub const CASE: Case = ("http_surface_and_concurrent_scrapes", run);

fn run() -> Result<Outcome> {
    let lab = ExporterLab::new()?;
    let expected = lab.send_plan()?;
    let (ns, at) = (lab.ns(), lab.listen());
    surface(ns, at, &expected)?;
    concurrent_scrapes(ns, at, &expected)?;
    lab.stop()?;
    Ok(Outcome::Passed)
}

fn surface(ns: &Netns, at: SocketAddr, expected: &Expected) -> Result<()> {
    for path in [
        "/nope",
        "/metrics/",
        "/metrics/extra",
        "/api/v1/aliases/10.74.0.3",
        "/api/v2/aliases",
        "/healthz/",
    ] {
        let r = http::get(ns, at, path)?;
        ensure!(r.status == 404, "GET {path}: {} {:?}", r.status, r.text());
        let r = http::request(ns, at, "HEAD", path)?;
        ensure!(
            r.status == 404 && r.body.is_empty(),
            "HEAD {path}: {}",
            r.status
        );
    }
    let r = http::get(ns, at, "/healthz")?;
    ensure!(
        (r.status, r.text()?) == (200, "ok\n"),
        "/healthz: {} {:?}",
        r.status,
        r.text()
    );
    let r = http::get(ns, at, "/")?;
    ensure!(
        r.status == 200
            && r.header("content-type") == Some("text/html; charset=utf-8")
            && r.text()?.contains("/metrics"),
        "/: {r:?}"
    );
    let r = http::get(ns, at, "/api/v1/aliases")?;
    ensure!(
        r.status == 200 && r.header("content-type") == Some("application/json"),
        "/api/v1/aliases: {} {:?}",
        r.status,
        r.header("content-type")
    );
    let api = lab::aliases::Aliases::parse(r.text()?)?;
    for p in &PLAN {
        let row = api.row(ip(p.address))?;
        let (rx, tx) = expected[&ip(p.address)];
        ensure!(
            row.rx() == rx && row.tx() == tx && row.alias.as_deref() == p.alias,
            "/api/v1/aliases for {}: {row:#?}",
            p.address
        );
    }

    // HEAD: the GET's status and headers, no body.
    for (path, content_type) in [
        ("/metrics", "text/plain; version=0.0.4; charset=utf-8"),
        ("/healthz", "text/plain; charset=utf-8"),
        ("/api/v1/aliases", "application/json"),
        ("/", "text/html; charset=utf-8"),
    ] {
        let r = http::request(ns, at, "HEAD", path)?;
        ensure!(
            r.status == 200 && r.body.is_empty() && r.header("content-type") == Some(content_type),
            "HEAD {path}: {} {:?} with {} body bytes",
            r.status,
            r.headers,
            r.body.len()
        );
    }
    let r = http::request(ns, at, "HEAD", "/healthz")?;
    ensure!(
        r.header("content-length") == Some("3"),
        "HEAD /healthz announces the GET's length: {:?}",
        r.headers
    );
    let r = http::request(ns, at, "POST", "/metrics")?;
    ensure!(
        r.status == 405 && r.header("allow") == Some("GET, HEAD"),
        "POST /metrics: {} {:?}",
        r.status,
        r.headers
    );
    println!("  404 on unknown paths, HEAD without bodies, 405 on POST");

    Ok(())
}

fn concurrent_scrapes(ns: &Netns, at: SocketAddr, expected: &Expected) -> Result<()> {
    // 50 scrapes at once, each on its own connection. Nothing is sent
    // meanwhile, so every one must show the same counts for this lab's
    // addresses: exactly what was sent.
    const SCRAPERS: usize = 50;
    let start = Arc::new(Barrier::new(SCRAPERS));
    let ns_name = ns.name().to_owned();
    let scrapes: Vec<Result<Vec<Metric>>> = thread::scope(|s| {
        let handles: Vec<_> = (0..SCRAPERS)
            .map(|_| {
                let start = start.clone();
                s.spawn(move || {
                    start.wait();
                    let r = http::get(ns, at, "/metrics")?;
                    ensure!(r.status == 200, "a concurrent scrape got {}", r.status);
                    parse_text(r.text()?)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scraper does not panic"))
            .collect()
    });
    let want = expected_counters(expected, |p| p.alias.unwrap_or(""));
    for (i, scrape) in scrapes.into_iter().enumerate() {
        let scrape = scrape.with_context(|| format!("scrape {i} in {ns_name}"))?;
        let got = alias_counters(&scrape);
        ensure!(
            got == want,
            "scrape {i} of {SCRAPERS}: expected {want:#?}\ngot {got:#?}"
        );
    }
    println!(
        "  {SCRAPERS} concurrent scrapes: all 200, all with the same {} counter values",
        want.len()
    );
    Ok(())
}
