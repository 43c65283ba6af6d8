//! What the dashboards lab sets up: two hosts with their alias files, the
//! VIP they share, and the addresses that only receive.

use std::{net::SocketAddr, time::Duration};

use lab::ip;

pub const JOB: &str = "aliasstat";
/// aliasstat's default port, on each host's LAN address.
pub const PORT: u16 = 9864;
pub const ECHO_PORT: u16 = 5300;
pub const IFACE: &str = "lab-srv";
pub const CLIENT: &str = "10.76.0.1";
/// A second client whose ARP cache still points the VIP at A after the
/// move (a permanent neighbour): the router that missed the gratuitous ARP.
pub const ROUTER: &str = "10.76.0.9";
pub const VIP: &str = "10.76.0.100";
/// Received by both hosts, held by neither: foreign.
pub const BROADCAST: &str = "10.76.0.255";
/// VRRP's group, which a keepalived pair's members receive: foreign too.
pub const MULTICAST: &str = "224.0.0.18";
pub const MAIN: &str = "aliasstat.json";
pub const FLEET: &str = "aliasstat-fleet.json";
pub const BILLING: &str = "aliasstat-billing.json";
/// Grafana's data source "Scrape interval", set to what this Prometheus
/// scrapes at, and a panel about 1000 pixels wide.
pub const SCRAPE_INTERVAL: f64 = 1.0;
pub const MAX_DATA_POINTS: f64 = 1000.0;
/// Bounds on waits for Prometheus: a few scrapes, or a minute boundary and
/// then a few scrapes. Only a broken lab comes near them.
pub const PATIENCE: Duration = Duration::from_secs(20);
pub const PAST_A_MINUTE: Duration = Duration::from_secs(90);

/// One lab host: what it holds, what its alias file says, and the flows
/// the client sends it.
pub struct Plan {
    /// Documented (owner "ops"); Prometheus scrapes it, so it has traffic.
    pub primary: &'static str,
    /// Configured besides the primary, each with a flow from the client and
    /// an echo server. The last one is not in the alias file.
    pub served: [&'static str; 3],
    pub undocumented: &'static str,
    /// Documented, not configured, no traffic.
    pub absent: &'static str,
    /// Its rows in [`ALIASES`].
    pub host: &'static str,
}

impl Plan {
    /// The last of `served` is the undocumented one.
    const fn new(
        host: &'static str,
        primary: &'static str,
        served: [&'static str; 3],
        absent: &'static str,
    ) -> Self {
        Self {
            primary,
            served,
            undocumented: served[2],
            absent,
            host,
        }
    }

    /// The alias file's text.
    pub fn file(&self) -> String {
        let blocks: Vec<String> = ALIASES
            .iter()
            .filter(|row| row.0 == self.host)
            .map(|&(_, name, address, owner, purpose, pinned, commit)| {
                let interface = if pinned { "interface = \"lab-srv\"\n" } else { "" };
                let commit = commit.map_or(String::new(), |c| format!("commit_mbps = {c}\n"));
                format!(
                    "[[alias]]\nname = \"{name}\"\naddress = \"{address}\"\nowner = \"{owner}\"\npurpose = \"{purpose}\"\n{interface}{commit}"
                )
            })
            .collect();
        blocks.join("\n")
    }
}

pub const A: Plan = Plan::new(
    "a",
    "10.76.0.2",
    ["10.76.0.11", "10.76.0.12", "10.76.0.51"],
    "10.76.0.19",
);
pub const B: Plan = Plan::new(
    "b",
    "10.76.0.3",
    ["10.76.0.21", "10.76.0.22", "10.76.0.52"],
    "10.76.0.29",
);

type AliasRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    Option<u32>,
);

/// Both alias files, a row an alias: the host whose file it is, name,
/// address, owner, purpose, whether the file pins it to lab-srv, and its
/// commit_mbps (the two hosts state different ones for the VIP: the billing
/// dashboard shows the larger).
#[rustfmt::skip]
const ALIASES: &[AliasRow] = &[
    ("a", "node-a", "10.76.0.2", "ops", "primary address, scraped by Prometheus", true, None),
    ("a", "vip", "10.76.0.100", "lb-team", "keepalived VIP shared with node-b", true, Some(100)),
    ("a", "web-a", "10.76.0.11", "web-team", "shop frontend", false, Some(50)),
    ("a", "mail-a", "10.76.0.12", "mail-team", "SMTP submission", false, None),
    ("a", "old-a", "10.76.0.19", "web-team", "retired frontend, not configured any more", true, None),
    ("b", "node-b", "10.76.0.3", "ops", "primary address, scraped by Prometheus", true, None),
    ("b", "vip", "10.76.0.100", "lb-team", "keepalived VIP shared with node-a", true, Some(200)),
    ("b", "web-b", "10.76.0.21", "web-team", "shop frontend", false, Some(50)),
    ("b", "db-b", "10.76.0.22", "db-team", "PostgreSQL", false, None),
    ("b", "old-b", "10.76.0.29", "db-team", "retired replica, not configured any more", true, None),
];

/// Prometheus's `instance` label of each host, as the facts name them.
pub const INSTANCE_A: &str = "10.76.0.2:9864";
pub const INSTANCE_B: &str = "10.76.0.3:9864";

pub fn target(plan: &Plan) -> SocketAddr {
    let target = SocketAddr::new(ip(plan.primary), PORT);
    assert!(
        [INSTANCE_A, INSTANCE_B].contains(&target.to_string().as_str()),
        "the facts' instances name {target}"
    );
    target
}

/// Prometheus's `instance` label of a host.
pub fn instance(plan: &Plan) -> String {
    target(plan).to_string()
}
