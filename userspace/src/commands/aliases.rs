//! `aliasstat aliases`: every known address with its alias, state and
//! counts, as a table or as JSON.

use serde::Serialize;

use crate::{commands::table, inventory::Row};

#[derive(Serialize)]
struct Aliases<'a> {
    aliases: &'a [Row],
}

/// `{"aliases":[…]}`: the same document `/api/v1/aliases` serves.
pub fn json(rows: &[Row]) -> String {
    serde_json::to_string(&Aliases { aliases: rows }).expect("plain structs always serialize")
}

pub fn table(rows: &[Row]) -> String {
    let dash = || "-".to_string();
    let mut out = vec![[
        "ADDRESS".to_string(),
        "INTERFACE".into(),
        "LABEL".into(),
        "ALIAS".into(),
        "OWNER".into(),
        "STATE".into(),
        "RX_PACKETS".into(),
        "RX_BYTES".into(),
        "TX_PACKETS".into(),
        "TX_BYTES".into(),
    ]];
    out.extend(rows.iter().map(|r| {
        [
            r.address.to_string(),
            r.interface.clone().unwrap_or_else(dash),
            r.label.clone().unwrap_or_else(dash),
            r.alias.clone().unwrap_or_else(dash),
            r.owner
                .clone()
                .filter(|o| !o.is_empty())
                .unwrap_or_else(dash),
            r.state.to_string(),
            r.rx.packets.to_string(),
            r.rx.bytes.to_string(),
            r.tx.packets.to_string(),
            r.tx.bytes.to_string(),
        ]
    }));
    table::render(
        &out,
        [
            false, false, false, false, false, false, true, true, true, true,
        ],
    )
}
