//! The Grafana dashboards against real data (issue 6's "Dashboard test").
//!
//! Two aliasstat daemons in two lab namespaces, hosts A and B, sit on one
//! bridge with a client. A real Prometheus in the client's namespace scrapes
//! both every second and evaluates `dashboards/recording.yml` and
//! `dashboards/alerts.yml`, while UDP flows to every alias and a
//! keepalived-style VIP moves from A to B. Then every panel query and every
//! variable query of both dashboards, extracted and substituted by
//! `dashboards/queries.jq` exactly as `dashboards/check.sh` does, runs
//! through Prometheus's HTTP API the way Grafana would send it: instant
//! queries at the end of the lab's time range, range queries over it with
//! Grafana's step. No query may fail; every query must return data unless
//! it is on the commented list of what this lab cannot produce; and a set
//! of facts about the lab must read the same off the dashboards.
//!
//! Needs root, `/usr/bin/prometheus` and jq (`cargo xtask setup` installs
//! both): `cargo xtask test -- dashboards`, or `cargo test --release -p lab
//! --test dashboards` with `ALIASSTAT_BIN` set. It takes one
//! to two minutes: the fleet view's "moves" table samples presence at whole
//! minutes, so the lab has to span one minute boundary before the move and
//! one after it.

mod answer;
mod extract;
mod facts;
mod fleet;
mod plan;
mod queries;
mod two_hosts;

use std::process::ExitCode;

fn main() -> ExitCode {
    lab::harness::run_with_rootless(
        "dashboards",
        &[("dashboards_show_two_hosts_and_a_vip_move", two_hosts::run)],
        &[("extracts_the_real_dashboards", extract::run)],
    )
}
