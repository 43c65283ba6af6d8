//! The JSON API beside `/metrics`: `/api/v1/aliases` (every address with
//! its inventory and counts, the document `aliasstat aliases --json`
//! prints) and `/api/v1/status` (what runs where). `top` and scripts read
//! these types, so the server and its clients share one definition.

use std::fs;

use common::Direction;
use serde::{Deserialize, Serialize};

use crate::{
    bpf::attach::{Attachment, Hook},
    daemon::Live,
};

/// The header of a 404 whose path the daemon serves but whose feature it
/// runs without (`--services off`, `--peers off`, `--no-history`), naming
/// the feature: a client tells it from a path that this daemon does not
/// serve at all, such as a daemon older than the feature.
pub const OFF_HEADER: &str = "aliasstat-off";

/// `/api/v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    /// The host's name, for headers that say which machine this is.
    pub host: String,
    pub attachments: Vec<Attached>,
}

/// One program on one interface, and whether it is attached now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    pub interface: String,
    pub hook: Hook,
    pub direction: Direction,
    pub attached: bool,
}

impl From<&Attachment> for Attached {
    fn from(a: &Attachment) -> Self {
        Self {
            interface: a.iface.clone(),
            hook: a.hook,
            direction: a.direction,
            attached: a.is_attached(),
        }
    }
}

pub fn status(live: &Live) -> Status {
    Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        host: hostname(),
        attachments: live.attachments().iter().map(Attached::from).collect(),
    }
}

/// The `address` of a `/api/v1/peers?address=A` query, percent-decoded:
/// an address or an alias name.
pub fn wanted_address(query: Option<&str>) -> Option<String> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("address="))?;
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = |s: &[u8]| {
            std::str::from_utf8(s)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        };
        match (b, tail.get(..2).and_then(hex)) {
            (b'%', Some(decoded)) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            (b'+', _) => {
                bytes.push(b' ');
                rest = tail;
            }
            _ => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The UTS name of the daemon's namespace; empty if /proc is not there.
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_query_names_one_address() {
        let cases = [
            (None, None),
            (Some("x=1"), None),
            (Some("address=10.0.0.5"), Some("10.0.0.5")),
            (Some("a=b&address=fd00%3A%3A1"), Some("fd00::1")),
            (Some("address=shop+tls%zz"), Some("shop tls%zz")),
        ];
        for (query, want) in cases {
            assert_eq!(wanted_address(query).as_deref(), want, "{query:?}");
        }
    }

    #[test]
    fn status_has_the_documented_shape() {
        let status = Status {
            version: "0.1.0".into(),
            host: "web-01".into(),
            attachments: vec![Attached {
                interface: "eth0".into(),
                hook: Hook::Xdp,
                direction: Direction::Rx,
                attached: true,
            }],
        };
        let text = serde_json::to_string(&status).unwrap();
        assert_eq!(
            text,
            r#"{"version":"0.1.0","host":"web-01","attachments":[{"interface":"eth0","hook":"xdp","direction":"rx","attached":true}]}"#
        );
        assert_eq!(serde_json::from_str::<Status>(&text).unwrap(), status);
    }
}
