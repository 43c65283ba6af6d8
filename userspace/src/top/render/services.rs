//! The drill-down's services pane: each service of the address with its
//! rates, its exact counts and its processes, then what arrived that none
//! took.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line as Text, Span},
};

use super::{List, rate};
use crate::{
    commands::table::escape,
    top::{
        peers::Drill,
        services::{Reading, ServiceLine, Taker},
        state::Unit,
    },
};

const TITLES: [&str; 9] = [
    "UNIT",
    "INTERFACE",
    "RX",
    "TX",
    "RX PACKETS",
    "RX BYTES",
    "TX PACKETS",
    "TX BYTES",
    "PROCESSES",
];

/// One row per line; the unserved line is received traffic only, so its
/// transmit cells are `-`.
fn row(l: &ServiceLine, unit: Unit) -> [String; 9] {
    let rx = rate(l.rates.map(|r| r.rx), unit);
    let interface = escape(&l.interface).into_owned();
    match &l.taker {
        Taker::Service { label, processes } => [
            escape(label).into_owned(),
            interface,
            rx,
            rate(l.rates.map(|r| r.tx), unit),
            l.rx.packets.to_string(),
            l.rx.bytes.to_string(),
            l.tx.packets.to_string(),
            l.tx.bytes.to_string(),
            escape(&processes.join(",")).into_owned(),
        ],
        Taker::Unserved => [
            "(unserved)".to_owned(),
            interface,
            rx,
            "-".to_owned(),
            l.rx.packets.to_string(),
            l.rx.bytes.to_string(),
            "-".to_owned(),
            "-".to_owned(),
            String::new(),
        ],
    }
}

/// What the pane says on its first row, if anything.
fn note(reading: &Reading, empty: bool) -> Option<String> {
    match reading {
        Reading::Read if empty => {
            Some(" no traffic to or from this address since the daemon attached".to_owned())
        }
        Reading::Read => None,
        Reading::Pending => {
            Some(" no services read (yet): they follow with the next sample".to_owned())
        }
        Reading::Off(why) => Some(format!(" no services: {}", escape(why))),
        Reading::NotServed => Some(
            " the daemon has no /api/v1/services: it predates per-service counting (upgrade it), or a proxy hides the path"
                .to_owned(),
        ),
        Reading::Failed(e) => Some(format!(" reading the services failed: {}", escape(e))),
    }
}

pub(super) fn draw(frame: &mut Frame<'_>, drill: &Drill, unit: Unit, area: Rect) {
    let pane = &drill.services;
    let rows: Vec<[String; 9]> = pane.lines.iter().map(|l| row(l, unit)).collect();
    let services = pane
        .lines
        .iter()
        .filter(|l| l.taker != Taker::Unserved)
        .count();
    let title = Text::from(vec![
        Span::styled(
            format!("services of {} ({})", escape(&drill.name), drill.address),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · {services} listed · rates per second, packets and bytes since the daemon attached"
        )),
    ]);
    let list = List {
        title,
        titles: TITLES,
        note: note(&pane.reading, rows.is_empty()),
        rows,
        right: 2..8,
    };
    list.draw(frame, area);
}
