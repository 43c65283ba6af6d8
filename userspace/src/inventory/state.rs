//! The four states of an address, and the one place that spells them.

use std::{fmt, net::IpAddr, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{Config, HostTable};

/// The state of an address, from whether the file documents it and
/// whether the host holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// In the file and configured on this host.
    Documented,
    /// In the file, not on this host (a VIP the peer holds now).
    Absent,
    /// On this host, not in the file.
    Undocumented,
    /// Neither: broadcast, multicast, or traffic for an address that left.
    Foreign,
}

impl State {
    pub const ALL: [Self; 4] = [
        Self::Documented,
        Self::Absent,
        Self::Undocumented,
        Self::Foreign,
    ];

    pub const fn of(documented: bool, present: bool) -> Self {
        match (documented, present) {
            (true, true) => Self::Documented,
            (true, false) => Self::Absent,
            (false, true) => Self::Undocumented,
            (false, false) => Self::Foreign,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Documented => "documented",
            Self::Absent => "absent",
            Self::Undocumented => "undocumented",
            Self::Foreign => "foreign",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no state.
#[derive(Debug, thiserror::Error)]
#[error("unknown state `{0}`; expected documented, absent, undocumented or foreign")]
pub struct UnknownState(String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_owned()))
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// The state of `address` against the file and the host.
pub fn state(host: &HostTable, config: &Config, address: IpAddr) -> State {
    State::of(config.alias(address).is_some(), host.holds(address))
}
