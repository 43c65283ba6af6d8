//! A namespace's own view of /proc/net: SNMP counters and TCP sockets.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use crate::Netns;

/// `/proc/net/snmp`: `Group: Field ...` header lines, each followed by a
/// `Group: value ...` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snmp(BTreeMap<(String, String), i64>);

impl Snmp {
    /// `ns`'s counters; read on a thread inside `ns`, since the file shows
    /// the reading thread's namespace.
    pub fn read(ns: &Netns) -> Result<Self> {
        let text = ns
            .enter(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))?
            .with_context(|| format!("failed to read /proc/net/snmp in {}", ns.name()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut map = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(names) = lines.next() {
            let values = lines.next().context("a header line without values")?;
            let (group, names) = names.split_once(':').context("no group in header")?;
            let (vgroup, values) = values.split_once(':').context("no group in values")?;
            if group != vgroup {
                bail!("header {group} is followed by values of {vgroup}");
            }
            let names: Vec<_> = names.split_whitespace().collect();
            let values: Vec<_> = values.split_whitespace().collect();
            if names.len() != values.len() {
                bail!("{group}: {} names but {} values", names.len(), values.len());
            }
            for (name, value) in names.into_iter().zip(values) {
                let value = value
                    .parse()
                    .with_context(|| format!("{group}.{name} is `{value}`"))?;
                map.insert((group.to_owned(), name.to_owned()), value);
            }
        }
        Ok(Self(map))
    }

    /// `group.field`, e.g. `("Tcp", "OutSegs")`.
    pub fn get(&self, group: &str, field: &str) -> Result<i64> {
        self.0
            .get(&(group.to_owned(), field.to_owned()))
            .copied()
            .with_context(|| format!("no {group}.{field} in /proc/net/snmp"))
    }

    /// How much `group.field` grew from `earlier` to `self`.
    pub fn delta(&self, earlier: &Self, group: &str, field: &str) -> Result<u64> {
        let (now, then) = (self.get(group, field)?, earlier.get(group, field)?);
        u64::try_from(now - then)
            .with_context(|| format!("{group}.{field} went from {then} to {now}"))
    }
}

/// TCP state of a socket, as `/proc/net/tcp` shows it (`st`, in hex).
pub const TCP_LISTEN: u8 = 0x0a;

/// The states of `ns`'s IPv4 TCP sockets, TIME_WAIT entries included.
pub fn tcp_states(ns: &Netns) -> Result<Vec<u8>> {
    let text = ns
        .enter(|| std::fs::read_to_string("/proc/thread-self/net/tcp"))?
        .with_context(|| format!("failed to read /proc/net/tcp in {}", ns.name()))?;
    parse_tcp_states(&text)
}

fn parse_tcp_states(text: &str) -> Result<Vec<u8>> {
    text.lines()
        .skip(1)
        .map(|line| {
            let st = line
                .split_whitespace()
                .nth(3)
                .context("a short /proc/net/tcp line")?;
            u8::from_str_radix(st, 16).with_context(|| format!("bad state `{st}`"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 10
Tcp: RtoAlgorithm MaxConn OutSegs RetransSegs
Tcp: 1 -1 1234 5
Udp: InDatagrams OutDatagrams
Udp: 7 8
";

    #[test]
    fn parses_header_and_value_pairs() {
        let s = Snmp::parse(SNMP).unwrap();
        assert_eq!(s.get("Tcp", "OutSegs").unwrap(), 1234);
        assert_eq!(s.get("Tcp", "MaxConn").unwrap(), -1);
        assert_eq!(s.get("Udp", "OutDatagrams").unwrap(), 8);
        assert!(s.get("Udp", "OutSegs").is_err());
    }

    #[test]
    fn delta_refuses_to_go_backwards() {
        let before = Snmp::parse(SNMP).unwrap();
        let after = Snmp::parse(&SNMP.replace("1234", "1300")).unwrap();
        assert_eq!(after.delta(&before, "Tcp", "OutSegs").unwrap(), 66);
        assert!(before.delta(&after, "Tcp", "OutSegs").is_err());
    }

    #[test]
    fn rejects_malformed_tables() {
        for bad in [
            "Tcp: A B\n",
            "Tcp: A B\nTcp: 1\n",
            "Tcp: A\nUdp: 1\n",
            "Tcp: A\nTcp: x\n",
        ] {
            assert!(Snmp::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn reads_socket_states() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100000A:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100000A:1451 0200000A:9C40 09 00000000:00000000 01:00000014 00000000     0        0 0 1 0 20 4 30 10 -1
";
        assert_eq!(parse_tcp_states(text).unwrap(), vec![TCP_LISTEN, 0x09]);
    }
}
