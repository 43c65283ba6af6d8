//! Where the alias file and the host disagree: what `aliasstat check`
//! reports.

use super::{Alias, Config, HostAddress, HostTable};

/// Where the file and the host disagree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift<'a> {
    /// Alias-scope addresses on the host that the file does not name.
    pub undocumented: Vec<&'a HostAddress>,
    /// Documented aliases not configured on this host.
    pub missing: Vec<&'a Alias>,
    /// Documented aliases present, but not on the interface the file names.
    pub misplaced: Vec<(&'a Alias, Vec<&'a HostAddress>)>,
}

impl Drift<'_> {
    pub fn is_empty(&self) -> bool {
        self.undocumented.is_empty() && self.missing.is_empty() && self.misplaced.is_empty()
    }
}

/// Compares the file with the host. Host- and link-scope addresses only
/// count when the file names them.
pub fn drift<'a>(host: &'a HostTable, config: &'a Config) -> Drift<'a> {
    let undocumented = host
        .addresses()
        .filter(|a| a.scope.is_alias_scope() && config.alias(a.address).is_none())
        .collect();
    let mut missing = Vec::new();
    let mut misplaced = Vec::new();
    for alias in config.aliases() {
        let holders: Vec<&HostAddress> = host.holders(alias.address).collect();
        if holders.is_empty() {
            missing.push(alias);
        } else if let Some(expected) = &alias.interface
            && !holders.iter().any(|h| &h.interface == expected)
        {
            misplaced.push((alias, holders));
        }
    }
    Drift {
        undocumented,
        missing,
        misplaced,
    }
}
