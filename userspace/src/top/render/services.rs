//! The drill-down's services pane: each service of the address with its
//! processes and exact counts, then what arrived that none took.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Modifier, Style},
    text::{Line as Text, Span},
};

use super::List;
use crate::{
    commands::table::escape,
    services::AddressServices,
    top::{peers::Drill, services::ServicesRead},
};

const TITLES: [&str; 7] = [
    "UNIT",
    "INTERFACE",
    "RX PACKETS",
    "RX BYTES",
    "TX PACKETS",
    "TX BYTES",
    "PROCESSES",
];

/// One row per service on each interface, then its `(unserved)` row:
/// unserved is received traffic only.
fn rows(list: &[AddressServices]) -> Vec<[String; 7]> {
    let mut rows = Vec::new();
    for a in list {
        let interface = escape(&a.interface).into_owned();
        rows.extend(a.services.iter().map(|s| {
            [
                escape(s.label()).into_owned(),
                interface.clone(),
                s.rx_packets.to_string(),
                s.rx_bytes.to_string(),
                s.tx_packets.to_string(),
                s.tx_bytes.to_string(),
                escape(&s.processes.join(",")).into_owned(),
            ]
        }));
        rows.push([
            "(unserved)".to_owned(),
            interface,
            a.unserved.rx_packets.to_string(),
            a.unserved.rx_bytes.to_string(),
            "-".to_owned(),
            "-".to_owned(),
            String::new(),
        ]);
    }
    rows
}

pub(super) fn draw(frame: &mut Frame<'_>, drill: &Drill, area: Rect) {
    let (rows, note) = match &drill.services {
        ServicesRead::Read(list) => {
            let rows = rows(list);
            let note = rows.is_empty().then(|| {
                " no traffic to or from this address since the daemon attached".to_owned()
            });
            (rows, note)
        }
        ServicesRead::Pending => (
            Vec::new(),
            Some(" no services read (yet): they follow with the next sample".to_owned()),
        ),
        ServicesRead::Off => (
            Vec::new(),
            Some(
                " the daemon counts no services: it runs with --services off (see `aliasstat run --help`)"
                    .to_owned(),
            ),
        ),
        ServicesRead::Failed(e) => (
            Vec::new(),
            Some(format!(" reading the services failed: {}", escape(e))),
        ),
    };
    let services: usize = match &drill.services {
        ServicesRead::Read(list) => list.iter().map(|a| a.services.len()).sum(),
        _ => 0,
    };
    let title = Text::from(vec![
        Span::styled(
            format!("services of {} ({})", escape(&drill.name), drill.address),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · {services} listed · packets and bytes since the daemon attached"
        )),
    ]);
    let list = List {
        title,
        titles: TITLES,
        rows,
        right: 2..6,
        note,
    };
    list.draw(frame, area);
}
