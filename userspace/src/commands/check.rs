//! `aliasstat check`: the alias file against the live host, and its
//! documented services against the daemon's traffic, for cron and CI.

use std::fmt::Write as _;

use crate::{
    commands::table::escape,
    inventory::Drift,
    services::drift::{Seen, ServiceDrift},
};

/// Exit status when file and host agree.
pub const AGREE: u8 = 0;
/// Exit status when they drift.
pub const DRIFT: u8 = 1;
/// Exit status when the file cannot be used, or its documented services
/// cannot be checked.
pub const INVALID: u8 = 2;

/// The report, one finding per line, and the exit status.
pub fn report(drift: &Drift<'_>, services: &[ServiceDrift]) -> (String, u8) {
    if drift.is_empty() && services.is_empty() {
        return ("the alias file and this host agree\n".into(), AGREE);
    }
    let mut out = String::new();
    for a in &drift.undocumented {
        let _ = write!(
            out,
            "undocumented: {}/{} on {}",
            a.address,
            a.prefix_len,
            escape(&a.interface)
        );
        if let Some(label) = a.label.as_deref().filter(|l| *l != a.interface) {
            let _ = write!(out, " (label {})", escape(label));
        }
        out.push('\n');
    }
    for a in &drift.missing {
        let _ = writeln!(
            out,
            "missing: alias \"{}\" ({}) is not configured on this host",
            escape(&a.name),
            a.address
        );
    }
    for (a, holders) in &drift.misplaced {
        let on: Vec<_> = holders.iter().map(|h| escape(&h.interface)).collect();
        let _ = writeln!(
            out,
            "misplaced: alias \"{}\" ({}) is expected on {} but is on {}",
            escape(&a.name),
            a.address,
            escape(a.interface.as_deref().unwrap_or("-")),
            on.join(", ")
        );
    }
    for d in services {
        let alias = escape(&d.alias);
        let _ = match d.seen {
            Seen::Receives => writeln!(
                out,
                "service: alias \"{alias}\" ({}) is documented for {} but {} receives on it",
                d.alias_address,
                escape(&d.documented),
                escape(&d.observed)
            ),
            Seen::Sends => writeln!(
                out,
                "service: {} sends from {}, which is not its alias \"{alias}\" ({})",
                escape(&d.documented),
                d.address,
                d.alias_address
            ),
        };
    }
    (out, DRIFT)
}
