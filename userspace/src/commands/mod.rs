//! The one-shot subcommands' results: `dump`, `aliases`, `check`,
//! `detach` and `report`, the tables among them drawn by one helper (`table`).

pub mod aliases;
pub mod check;
pub mod detach;
pub mod dump;
pub mod report;
pub mod table;
