//! The audit trail: which addresses appeared on or left the host.

use std::fmt;

use super::{Config, HostAddress, HostTable, State, state};

/// An address that appeared on or left the host.
#[derive(Debug, PartialEq, Eq)]
pub struct Change<'a> {
    pub added: bool,
    pub entry: &'a HostAddress,
    /// The state after the change.
    pub state: State,
    pub alias: Option<&'a str>,
}

impl fmt::Display for Change<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let (verb, prep) = if self.added {
            ("added", "on")
        } else {
            ("removed", "from")
        };
        write!(
            f,
            "address {}/{} {verb} {prep} {}",
            e.address, e.prefix_len, e.interface
        )?;
        if let Some(label) = e.label.as_deref().filter(|l| *l != e.interface) {
            write!(f, " (label {label})")?;
        }
        match self.alias {
            Some(alias) => write!(f, ": alias \"{alias}\" is {}", self.state),
            None => write!(f, ": {}", self.state),
        }
    }
}

/// What differs between two host tables, in address order.
pub fn changes<'a>(
    before: &'a HostTable,
    now: &'a HostTable,
    config: &'a Config,
) -> Vec<Change<'a>> {
    let change = |added, entry: &'a HostAddress, table: &HostTable| Change {
        added,
        entry,
        state: state(table, config, entry.address),
        alias: config.alias(entry.address).map(|a| a.name.as_str()),
    };
    let gone = before
        .addresses()
        .filter(|e| !now.has(e.ifindex, e.address))
        .map(|e| change(false, e, now));
    let new = now
        .addresses()
        .filter(|e| !before.has(e.ifindex, e.address))
        .map(|e| change(true, e, now));
    gone.chain(new).collect()
}
