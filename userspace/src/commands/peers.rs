//! `aliasstat peers`: who still talks with an address, read from a running
//! daemon's `/api/v1/peers`, and `--idle`, the addresses nobody does.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, SystemTime},
};

use crate::{
    commands::table,
    inventory::State,
    peers::{
        time::rfc3339,
        view::{self, AddressPeers, Stamp},
    },
    top::client::{Access, Client, ClientError},
};

#[derive(Debug, thiserror::Error)]
pub enum PeersCommandError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("failed to start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(
        "`{target}` is neither an address nor an alias the daemon knows; `aliasstat aliases` lists them"
    )]
    Unknown { target: String },
}

/// What was asked for.
pub struct Ask {
    pub target: Option<String>,
    pub since: Option<Duration>,
    pub idle: Option<Duration>,
    pub json: bool,
}

/// Asks the daemon at `url` and renders the answer.
pub fn run(url: &str, access: &Access, ask: &Ask) -> Result<String, PeersCommandError> {
    let client = Client::new(url, access)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PeersCommandError::Runtime)?;
    let list = rt.block_on(client.peers(ask.target.as_deref()))?;
    if let Some(target) = &ask.target
        && list.is_empty()
    {
        return Err(PeersCommandError::Unknown {
            target: target.clone(),
        });
    }
    Ok(render(list, ask, SystemTime::now()))
}

/// The answer as `ask` wants it, judged at `now`.
pub fn render(mut list: Vec<AddressPeers>, ask: &Ask, now: SystemTime) -> String {
    if let Some(since) = ask.since {
        view::seen_since(&mut list, since, now);
    }
    let Some(idle) = ask.idle else {
        return output(&list, ask.json, peer_tables);
    };
    let last = last_traffic(&list);
    let silent = |a: &AddressPeers| {
        a.state != State::Foreign && last[&a.address].is_none_or(|t| t < Stamp(now - idle))
    };
    let (quiet, busy): (Vec<_>, Vec<_>) = list.into_iter().partition(silent);
    if ask.target.is_some() && quiet.is_empty() {
        // A named address that is still in use: who uses it.
        let mut busy: Vec<_> = busy;
        view::seen_since(&mut busy, idle, now);
        let note = format!("not silent: peers in the last {}\n", human(idle));
        return output(&busy, ask.json, |l| note.clone() + &peer_tables(l));
    }
    output(&quiet, ask.json, silent_table)
}

fn output(list: &[AddressPeers], json: bool, text: impl Fn(&[AddressPeers]) -> String) -> String {
    if json {
        serde_json::to_string(list).expect("plain structs always serialize") + "\n"
    } else {
        text(list)
    }
}

/// The latest traffic of each address, over all its interfaces.
fn last_traffic(list: &[AddressPeers]) -> BTreeMap<IpAddr, Option<Stamp>> {
    let mut last: BTreeMap<IpAddr, Option<Stamp>> = BTreeMap::new();
    for a in list {
        let entry = last.entry(a.address).or_default();
        *entry = (*entry).max(a.last_traffic);
    }
    last
}

fn when(t: Option<Stamp>) -> String {
    t.map_or_else(|| "never".to_owned(), |t| rfc3339(t.0))
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    }
}

/// One summary line per address, then its peers.
fn peer_tables(list: &[AddressPeers]) -> String {
    let mut out = String::new();
    for a in list {
        out.push_str(&table::escape(&format!(
            "{} ({}, {}) on {}: {} peers, last traffic {}, {}",
            a.address,
            a.alias.as_deref().unwrap_or("no alias"),
            a.state,
            if a.interface.is_empty() {
                "-"
            } else {
                &a.interface
            },
            a.peers.len(),
            when(a.last_traffic),
            if a.complete {
                "complete"
            } else {
                "INCOMPLETE (the peer table was full; raise --peer-capacity)"
            },
        )));
        out.push('\n');
        if a.peers.is_empty() {
            continue;
        }
        let mut rows = vec![
            [
                "  PEER",
                "RX PACKETS",
                "RX BYTES",
                "TX PACKETS",
                "TX BYTES",
                "FIRST SEEN",
                "LAST SEEN",
            ]
            .map(String::from),
        ];
        for p in &a.peers {
            rows.push([
                format!("  {}", p.peer),
                p.rx_packets.to_string(),
                p.rx_bytes.to_string(),
                p.tx_packets.to_string(),
                p.tx_bytes.to_string(),
                rfc3339(p.first_seen.0),
                rfc3339(p.last_seen.0),
            ]);
        }
        out.push_str(&table::render(
            &rows,
            [false, true, true, true, true, false, false],
        ));
    }
    out
}

/// The silent addresses: where they are, what they are, when they last
/// had traffic.
fn silent_table(list: &[AddressPeers]) -> String {
    let mut rows =
        vec![["ADDRESS", "INTERFACE", "ALIAS", "STATE", "LAST TRAFFIC"].map(String::from)];
    for a in list {
        rows.push([
            a.address.to_string(),
            a.interface.clone(),
            a.alias.clone().unwrap_or_default(),
            a.state.to_string(),
            when(a.last_traffic),
        ]);
    }
    table::render(&rows, [false; 5])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{Remote, time::parse_rfc3339, view::PeerRow};

    fn at(text: &str) -> SystemTime {
        parse_rfc3339(text).unwrap()
    }

    fn address(ip: &str, alias: Option<&str>, last: Option<&str>) -> AddressPeers {
        AddressPeers {
            address: ip.parse().unwrap(),
            interface: "eth0".into(),
            alias: alias.map(Into::into),
            state: State::Documented,
            complete: true,
            last_traffic: last.map(|t| Stamp(at(t))),
            peers: last
                .map(|t| PeerRow {
                    peer: Remote::full("203.0.113.7".parse().unwrap()),
                    rx_packets: 3,
                    rx_bytes: 426,
                    tx_packets: 2,
                    tx_bytes: 200,
                    first_seen: Stamp(at("2026-11-01T00:00:00Z")),
                    last_seen: Stamp(at(t)),
                })
                .into_iter()
                .collect(),
        }
    }

    fn ask(target: Option<&str>, idle: Option<u64>) -> Ask {
        Ask {
            target: target.map(Into::into),
            since: None,
            idle: idle.map(|d| Duration::from_secs(d * 86_400)),
            json: false,
        }
    }

    #[test]
    fn idle_lists_the_silent_addresses_or_who_still_talks() {
        let now = at("2026-12-01T12:00:00Z");
        let list = vec![
            address("10.0.0.5", Some("shop-tls"), Some("2026-12-01T10:00:00Z")),
            address("10.0.0.6", Some("old-api"), Some("2026-11-02T10:00:00Z")),
            address("10.0.0.7", None, None),
        ];
        assert_eq!(
            render(list.clone(), &ask(None, Some(7)), now),
            "ADDRESS   INTERFACE  ALIAS    STATE       LAST TRAFFIC\n\
             10.0.0.6  eth0       old-api  documented  2026-11-02T10:00:00Z\n\
             10.0.0.7  eth0                documented  never\n"
        );
        let busy = vec![list[0].clone()];
        assert_eq!(
            render(busy, &ask(Some("shop-tls"), Some(7)), now),
            "not silent: peers in the last 7d\n\
             10.0.0.5 (shop-tls, documented) on eth0: 1 peers, last traffic 2026-12-01T10:00:00Z, complete\n  \
             PEER         RX PACKETS  RX BYTES  TX PACKETS  TX BYTES  FIRST SEEN            LAST SEEN\n  \
             203.0.113.7           3       426           2       200  2026-11-01T00:00:00Z  2026-12-01T10:00:00Z\n"
        );
    }
}
