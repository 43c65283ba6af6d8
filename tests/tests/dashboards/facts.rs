//! What the lab did that the dashboards must show, as a table: per row, the
//! query (scenario, dashboard, title, ref ids), what it should say, and the
//! checks of its answer.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail, ensure};

use crate::{
    answer::Answer,
    plan::{
        A, B, BILLING, BROADCAST, FLEET, INSTANCE_A as IA, INSTANCE_B as IB, MAIN, MULTICAST, VIP,
    },
};

/// One check of an answer.
#[derive(Debug)]
pub enum Check {
    /// The values of these labels over every series (`""` where one is
    /// missing): exactly these rows.
    Keys(&'static [&'static str], &'static [&'static [&'static str]]),
    /// One sample, of this value.
    Only(f64),
    /// As many series.
    Len(usize),
    /// Every value, of each sample or of each series at each step, is this.
    All(f64),
    /// Some value is above 0.
    SomePositive,
    /// An instant vector by this label: every value above 0.
    Positive(&'static str),
    /// An instant vector by this label: as many distinct values.
    Distinct(&'static str, usize),
    /// An instant vector by this label: exactly these values.
    By(&'static str, &'static [(&'static str, f64)]),
    /// The VIP's series by instance, runs of one value folded: exactly these.
    VipShapes(&'static [(&'static str, &'static [f64])]),
    /// By instance: A's last hold at or before the move, B's after it.
    LastHeldAcrossMove,
}

/// Something the lab did that a query must show: in `scenario`, the query
/// `title`/`ref_id` of `dashboard`, for each of `ref_ids`.
pub struct Fact {
    pub scenario: &'static str,
    pub dashboard: &'static str,
    pub title: &'static str,
    pub ref_ids: &'static [&'static str],
    pub says: &'static str,
    pub checks: &'static [Check],
}

impl Fact {
    /// `moved_at`: when the VIP moved, in Unix seconds.
    pub fn check(&self, answer: &Answer, moved_at: f64) -> Result<()> {
        self.checks
            .iter()
            .try_for_each(|c| c.check(answer, moved_at))
    }
}

impl Check {
    fn check(&self, o: &Answer, moved_at: f64) -> Result<()> {
        match *self {
            Self::Keys(labels, rows) => equal(o.keys(labels), rows_set(rows)),
            Self::Only(value) => equal(o.only()?, value),
            Self::Len(n) => equal(o.len(), n),
            Self::All(value) => {
                ensure!(o.values().iter().all(|v| *v == value), "{o:?}");
                Ok(())
            }
            Self::SomePositive => {
                ensure!(o.values().iter().any(|v| *v > 0.0), "{o:?}");
                Ok(())
            }
            Self::Positive(label) => {
                let values = o.by(label)?;
                ensure!(values.values().all(|v| *v > 0.0), "a zero in {values:?}");
                Ok(())
            }
            Self::Distinct(label, n) => equal(o.by(label)?.len(), n),
            Self::By(label, want) => equal(o.by(label)?, by_map(want)),
            Self::VipShapes(want) => {
                let Answer::Matrix(m) = o else {
                    bail!("expected a range result");
                };
                let vip = Answer::Matrix(
                    m.iter()
                        .filter(|s| s.labels.get("address").map(String::as_str) == Some(VIP))
                        .cloned()
                        .collect(),
                )
                .shapes("instance")?;
                let want = want.iter().map(|(i, s)| ((*i).to_owned(), s.to_vec()));
                equal(vip, want.collect())
            }
            Self::LastHeldAcrossMove => {
                let by = o.by("instance")?;
                let (a, b) = (by.get(IA), by.get(IB));
                let moved_ms = moved_at * 1000.0;
                ensure!(
                    by.len() == 2
                        && a.is_some_and(|a| *a <= moved_ms)
                        && b.is_some_and(|b| *b >= moved_ms),
                    "expected A's last hold at or before the move ({moved_ms}) and B's after it, got {by:?}"
                );
                Ok(())
            }
        }
    }
}

fn equal<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<()> {
    ensure!(got == want, "expected {want:?}, got {got:?}");
    Ok(())
}

fn rows_set(rows: &[&[&str]]) -> BTreeSet<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

fn by_map(want: &[(&str, f64)]) -> BTreeMap<String, f64> {
    want.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

const BOTH: &[&str] = &["A", "B"];
const ONLY_A: &[&str] = &["A"];
const BOTH_INSTANCES: &[&[&str]] = &[&[IA], &[IB]];
/// The documented aliases that carry traffic (all but old-a and old-b).
const BUSY_ALIASES: &[&[&str]] = &[
    &["db-b"],
    &["mail-a"],
    &["node-a"],
    &["node-b"],
    &["vip"],
    &["web-a"],
    &["web-b"],
];
const ALL_ALIASES: &[&[&str]] = &[
    &["db-b"],
    &["mail-a"],
    &["node-a"],
    &["node-b"],
    &["old-a"],
    &["old-b"],
    &["vip"],
    &["web-a"],
    &["web-b"],
];
/// Every owner in the two files: each has an alias with traffic.
const OWNERS: &[&[&str]] = &[
    &["db-team"],
    &["lb-team"],
    &["mail-team"],
    &["ops"],
    &["web-team"],
];
/// The VIP absent on A after the move; broadcast and VRRP multicast
/// foreign on both.
const ABSENT_FOREIGN: &[&[&str]] = &[
    &["absent", VIP, IA],
    &["foreign", BROADCAST, IA],
    &["foreign", BROADCAST, IB],
    &["foreign", MULTICAST, IA],
    &["foreign", MULTICAST, IB],
];
const VIP_MOVED: Check = Check::VipShapes(&[(IA, &[1.0, 0.0]), (IB, &[0.0, 1.0])]);

/// A row of the table.
const fn fact(
    scenario: &'static str,
    dashboard: &'static str,
    title: &'static str,
    ref_ids: &'static [&'static str],
    says: &'static str,
    checks: &'static [Check],
) -> Fact {
    Fact {
        scenario,
        dashboard,
        title,
        ref_ids,
        says,
        checks,
    }
}

/// The facts the lab established, as the dashboards must show them. In
/// scenario "all" every variable is on All and the fleet view on the VIP;
/// in "single", host A, lab-srv, owner web-team and alias web-a.
// A row a fact, as a table reads; rustfmt would spread each over ten lines.
#[rustfmt::skip]
pub const FACTS: &[Fact] = &[
    // --- scenario "all"
    fact("all", MAIN, "$job", &[""], "offers exactly the one job", &[Check::Keys(&["job"], &[&["aliasstat"]])]),
    fact("all", MAIN, "$instance", &[""], "offers exactly both hosts", &[Check::Keys(&["instance"], BOTH_INSTANCES)]),
    fact("all", MAIN, "$interface", &[""], "offers exactly lab-srv", &[Check::Keys(&["interface"], &[&["lab-srv"]])]),
    fact("all", MAIN, "$owner", &[""], "offers exactly every owner", &[Check::Keys(&["owner"], OWNERS)]),
    fact("all", MAIN, "$alias", &[""], "offers exactly every alias", &[Check::Keys(&["alias"], ALL_ALIASES)]),
    fact("all", FLEET, "$job", &[""], "offers exactly the one job", &[Check::Keys(&["job"], &[&["aliasstat"]])]),
    fact("all", FLEET, "$alias", &[""], "offers exactly every alias", &[Check::Keys(&["alias"], ALL_ALIASES)]),
    fact("all", MAIN, "Undocumented addresses in use", ONLY_A, "2 (one per host)", &[Check::Only(2.0)]),
    fact(
        "all", MAIN, "Undocumented addresses with traffic", BOTH, "exactly A's and B's undocumented address",
        &[Check::Keys(&["instance", "address"], &[&[IA, A.undocumented], &[IB, B.undocumented]])],
    ),
    fact("all", MAIN, "Absent / foreign addresses receiving", ONLY_A, "5", &[Check::Only(5.0)]),
    fact(
        "all", MAIN, "Traffic to absent and foreign addresses", ONLY_A,
        "the VIP absent on A after the move; broadcast and VRRP multicast foreign on both",
        &[Check::Keys(&["state", "address", "instance"], ABSENT_FOREIGN)],
    ),
    fact("all", MAIN, "Exporters up", BOTH, "2", &[Check::Only(2.0)]),
    fact(
        "all", MAIN, "Top aliases by receive bit/s", ONLY_A, "the 7 documented aliases with traffic, each > 0",
        &[Check::Keys(&["alias"], BUSY_ALIASES), Check::Positive("alias")],
    ),
    fact(
        "all", MAIN, "Top aliases by transmit bit/s", ONLY_A, "the 7 documented aliases with traffic, each > 0",
        &[Check::Keys(&["alias"], BUSY_ALIASES), Check::Positive("alias")],
    ),
    fact(
        "all", MAIN, "Throughput per alias", BOTH, "a series for each of the 7 documented aliases with traffic",
        &[Check::Keys(&["alias"], BUSY_ALIASES)],
    ),
    fact(
        "all", MAIN, "Packets per alias", BOTH, "a series for each of the 7 documented aliases with traffic",
        &[Check::Keys(&["alias"], BUSY_ALIASES)],
    ),
    fact(
        "all", MAIN, "Bytes per owner", BOTH, "every owner in the files, each > 0",
        &[Check::Keys(&["owner"], OWNERS), Check::Positive("owner")],
    ),
    fact(
        "all", MAIN, "Bytes per alias", BOTH, "the 7 aliases with traffic under their owners, each > 0",
        &[
            Check::Keys(
                &["owner", "alias"],
                &[
                    &["db-team", "db-b"],
                    &["lb-team", "vip"],
                    &["mail-team", "mail-a"],
                    &["ops", "node-a"],
                    &["ops", "node-b"],
                    &["web-team", "web-a"],
                    &["web-team", "web-b"],
                ],
            ),
            Check::Positive("alias"),
        ],
    ),
    fact("all", MAIN, "Address presence timeline", ONLY_A, "the VIP: 1 then 0 on A, 0 then 1 on B", &[VIP_MOVED]),
    fact(
        "all", MAIN, "Addresses configured now", ONLY_A, "A's 4 addresses, and B's 4 plus the VIP",
        &[Check::Keys(
            &["instance", "address"],
            &[
                &[IA, A.primary],
                &[IA, A.served[0]],
                &[IA, A.served[1]],
                &[IA, A.undocumented],
                &[IB, B.primary],
                &[IB, B.served[0]],
                &[IB, B.served[1]],
                &[IB, B.undocumented],
                &[IB, VIP],
            ],
        )],
    ),
    fact(
        "all", MAIN, "Attached programs", ONLY_A, "tc receive and transmit on lab-srv of both hosts, all attached",
        &[Check::Len(4), Check::Keys(&["instance", "interface"], &[&[IA, "lab-srv"], &[IB, "lab-srv"]]), Check::All(1.0)],
    ),
    fact(
        "all", MAIN, "Non-IP traffic, bit/s", BOTH, "ARP on both hosts, above 0 at some point",
        &[Check::Keys(&["instance"], BOTH_INSTANCES), Check::SomePositive],
    ),
    fact(
        "all", MAIN, "Non-IP traffic, packets/s", BOTH, "ARP on both hosts, above 0 at some point",
        &[Check::Keys(&["instance"], BOTH_INSTANCES), Check::SomePositive],
    ),
    fact(
        "all", MAIN, "Overflow traffic (not attributed to any address), bit/s", BOTH,
        "0 on both hosts throughout: the map never filled", &[Check::Len(2), Check::All(0.0)],
    ),
    fact(
        "all", MAIN, "Overflow traffic (not attributed to any address), packets/s", BOTH,
        "0 on both hosts throughout: the map never filled", &[Check::Len(2), Check::All(0.0)],
    ),
    fact(
        "all", MAIN, "Exporters", &["C"], "the last reload succeeded on both",
        &[Check::Distinct("instance", 2), Check::Positive("instance")],
    ),
    fact("all", FLEET, "Hosts holding $alias now", ONLY_A, "1", &[Check::Only(1.0)]),
    fact("all", FLEET, "Where $alias lives now", ONLY_A, "exactly B", &[Check::Keys(&["instance"], &[&[IB]])]),
    fact("all", FLEET, "Where $alias lived (VIP moves)", ONLY_A, "1 then 0 on A, 0 then 1 on B", &[VIP_MOVED]),
    fact(
        "all", FLEET, "Moves of $alias in the selected range", ONLY_A, "one change on A, one on B",
        &[Check::By("instance", &[(IA, 1.0), (IB, 1.0)])],
    ),
    fact(
        "all", FLEET, "Moves of $alias in the selected range", &["B"], "last held: A before the move, B after it",
        &[Check::LastHeldAcrossMove],
    ),
    fact(
        "all", FLEET, "$alias traffic per instance", BOTH,
        "both hosts (A before the move and its stale neighbour after, B after)",
        &[Check::Keys(&["instance"], BOTH_INSTANCES)],
    ),
    fact(
        "all", FLEET, "Holders of every documented alias", ONLY_A, "1 for each alias held, 0 for old-a and old-b",
        &[Check::By(
            "alias",
            &[
                ("db-b", 1.0),
                ("mail-a", 1.0),
                ("node-a", 1.0),
                ("node-b", 1.0),
                ("old-a", 0.0),
                ("old-b", 0.0),
                ("vip", 1.0),
                ("web-a", 1.0),
                ("web-b", 1.0),
            ],
        )],
    ),
    fact(
        "all", BILLING, "Transfer this month per owner", BOTH, "every owner in the files, each > 0",
        &[Check::Keys(&["owner"], OWNERS), Check::Positive("owner")],
    ),
    fact("all", BILLING, "95th percentile per owner", BOTH, "every owner in the files", &[Check::Keys(&["owner"], OWNERS)]),
    fact(
        "all", BILLING, "95th percentile per alias", &["C"], "the commits in bit/s, the VIP's the larger of A's and B's",
        &[Check::By("alias", &[("vip", 200e6), ("web-a", 50e6), ("web-b", 50e6)])],
    ),
    // --- scenario "single"
    fact("single", MAIN, "$instance", &[""], "offers exactly both hosts", &[Check::Keys(&["instance"], BOTH_INSTANCES)]),
    fact("single", MAIN, "$interface", &[""], "offers exactly lab-srv", &[Check::Keys(&["interface"], &[&["lab-srv"]])]),
    fact(
        "single", MAIN, "$owner", &[""], "offers exactly A's owners",
        &[Check::Keys(&["owner"], &[&["lb-team"], &["mail-team"], &["ops"], &["web-team"]])],
    ),
    fact("single", MAIN, "$alias", &[""], "offers exactly web-team's on A", &[Check::Keys(&["alias"], &[&["old-a"], &["web-a"]])]),
    fact("single", MAIN, "Undocumented addresses in use", ONLY_A, "1", &[Check::Only(1.0)]),
    fact(
        "single", MAIN, "Undocumented addresses with traffic", BOTH, "exactly A's undocumented address",
        &[Check::Keys(&["instance", "address"], &[&[IA, A.undocumented]])],
    ),
    fact("single", MAIN, "Exporters up", BOTH, "1", &[Check::Only(1.0)]),
    fact(
        "single", MAIN, "Bytes per owner", BOTH, "web-team only, > 0",
        &[Check::Keys(&["owner"], &[&["web-team"]]), Check::Positive("owner")],
    ),
    fact(
        "single", MAIN, "Bytes per alias", BOTH, "web-a of web-team only, > 0",
        &[Check::Keys(&["owner", "alias"], &[&["web-team", "web-a"]]), Check::Positive("alias")],
    ),
    fact(
        "single", BILLING, "Transfer this month per alias", BOTH, "web-a of web-team only, > 0",
        &[Check::Keys(&["owner", "alias"], &[&["web-team", "web-a"]]), Check::Positive("alias")],
    ),
    fact("single", BILLING, "95th percentile per alias", &["C"], "web-a's commit only", &[Check::By("alias", &[("web-a", 50e6)])]),
    fact("single", MAIN, "Absent / foreign addresses receiving", ONLY_A, "3", &[Check::Only(3.0)]),
    fact(
        "single", MAIN, "Traffic to absent and foreign addresses", ONLY_A, "A's rows only",
        &[Check::Keys(
            &["state", "address", "instance"],
            &[&["absent", VIP, IA], &["foreign", BROADCAST, IA], &["foreign", MULTICAST, IA]],
        )],
    ),
    fact("single", MAIN, "Top aliases by receive bit/s", ONLY_A, "web-a only", &[Check::Keys(&["alias"], &[&["web-a"]])]),
    fact(
        "single", MAIN, "Addresses configured now", ONLY_A, "web-a on A only",
        &[Check::Keys(&["instance", "address"], &[&[IA, A.served[0]]])],
    ),
    fact("single", FLEET, "Where $alias lives now", ONLY_A, "web-a: exactly A", &[Check::Keys(&["instance"], &[&[IA]])]),
    fact(
        "single", FLEET, "Moves of $alias in the selected range", ONLY_A, "web-a never moved",
        &[Check::By("instance", &[(IA, 0.0)])],
    ),
];
