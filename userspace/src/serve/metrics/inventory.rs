//! The inventory families: which addresses are present and documented,
//! and what the alias file says about each alias.

use std::net::IpAddr;

use bytes::BytesMut;

use super::family::{Arena, Family, Labels, Rendered};
use crate::inventory::{Config, HostTable};

pub static DOCUMENTED: Family<1> = Family::gauge(
    "aliasstat_address_documented",
    "1 if the alias file documents the address, 0 otherwise, for every address on this host, in the file, or with its own traffic series.",
    Labels(["address"]),
);

pub static PRESENT: Family<3> = Family::gauge(
    "aliasstat_address_present",
    "1 while the address is configured on this host (interface is the one holding it, label its IFA_LABEL such as eth0:1); 0 for a documented address that is absent.",
    Labels(["address", "interface", "label"]),
);

pub static ALIAS_INFO: Family<4> = Family::gauge(
    "aliasstat_alias_info",
    "Always 1: the owner and purpose of each documented alias, from the alias file. Join on address.",
    Labels(["address", "alias", "owner", "purpose"]),
);

pub static COMMIT: Family<1> = Family::gauge(
    "aliasstat_alias_commit_bytes_per_second",
    "The committed rate of the alias's contract (commit_mbps in the alias file) in bytes/s, 125000 per Mbit/s; only aliases with a commit_mbps have one. The billing alert compares the month's 95th percentile of 5-minute bit rates with 8 times this.",
    Labels(["alias"]),
);

/// The four families' samples for one host table and alias file,
/// rendered once.
pub struct Inventory {
    /// The label text of every sample below.
    text: Arena,
    /// Every address on the host or in the file, sorted, with whether the
    /// file documents it.
    documented: Vec<(IpAddr, bool, Rendered<1>)>,
    present: Vec<(Rendered<3>, bool)>,
    alias_info: Vec<Rendered<4>>,
    /// Bytes/s, since bit/s is not a base unit.
    commits: Vec<(Rendered<1>, f64)>,
}

impl Inventory {
    pub fn render(host: &HostTable, config: &Config) -> Self {
        let mut text = Arena::default();
        let mut known: Vec<IpAddr> = host
            .addresses()
            .map(|a| a.address)
            .chain(config.aliases().iter().map(|a| a.address))
            .collect();
        known.sort_unstable();
        known.dedup();
        let documented = known
            .into_iter()
            .map(|a| {
                let labels = DOCUMENTED.labels.render([&a.to_string()], &mut text);
                (a, config.alias(a).is_some(), labels)
            })
            .collect();
        let mut present: Vec<(Rendered<3>, bool)> = host
            .addresses()
            .map(|a| {
                let values = [
                    &a.address.to_string(),
                    a.interface.as_str(),
                    a.label.as_deref().unwrap_or(""),
                ];
                (PRESENT.labels.render(values, &mut text), true)
            })
            .collect();
        let absent = config.aliases().iter().filter(|a| !host.holds(a.address));
        present.extend(absent.map(|a| {
            let values = [
                &a.address.to_string(),
                a.interface.as_deref().unwrap_or(""),
                "",
            ];
            (PRESENT.labels.render(values, &mut text), false)
        }));
        let alias_info = config
            .aliases()
            .iter()
            .map(|a| {
                let address = a.address.to_string();
                ALIAS_INFO
                    .labels
                    .render([&address, &a.name, &a.owner, &a.purpose], &mut text)
            })
            .collect();
        let commits = commits(config, &mut text);
        text.shrink();
        Self {
            text,
            documented,
            present,
            alias_info,
            commits,
        }
    }

    /// Writes the three families. `with_series` are the addresses with
    /// series of their own, sorted: those neither held nor documented are
    /// shown as undocumented too.
    pub fn write_documented(&self, out: &mut BytesMut, with_series: impl Iterator<Item = IpAddr>) {
        let mut section = DOCUMENTED.open(out);
        let mut known = self.documented.iter().peekable();
        let mut series = with_series.peekable();
        // A merge of two sorted lists, each address written once.
        loop {
            let from_known = match (known.peek(), series.peek()) {
                (None, None) => break,
                (Some(k), Some(&s)) => k.0 <= s,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            let address = if from_known {
                let &(address, documented, labels) = known.next().expect("peeked");
                section.rendered(&self.text, labels, documented);
                address
            } else {
                let address = series.next().expect("peeked");
                section.sample([&address.to_string()], false);
                address
            };
            while series.next_if_eq(&address).is_some() {}
        }
    }

    /// The families after [`Self::write_documented`] (and the peer
    /// families, which sort between them).
    pub fn write_present_and_info(&self, out: &mut BytesMut) {
        let mut section = PRESENT.open(out);
        for &(labels, present) in &self.present {
            section.rendered(&self.text, labels, present);
        }
        let mut section = COMMIT.open(out);
        for &(labels, bytes_per_second) in &self.commits {
            section.rendered(&self.text, labels, bytes_per_second);
        }
        let mut section = ALIAS_INFO.open(out);
        for &labels in &self.alias_info {
            section.rendered(&self.text, labels, true);
        }
    }
}

/// The commit of every alias that has one, with its label text.
fn commits(config: &Config, text: &mut Arena) -> Vec<(Rendered<1>, f64)> {
    config
        .aliases()
        .iter()
        .filter_map(|a| Some((a, a.commit_bps?)))
        .map(|(a, bps)| (COMMIT.labels.render([&a.name], text), bps as f64 / 8.0))
        .collect()
}
