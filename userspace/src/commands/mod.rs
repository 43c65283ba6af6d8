//! The one-shot subcommands' results: `dump`, `aliases`, `check`,
//! `detach`, `peers`, `services` and `report`, the tables among them drawn
//! by one helper (`table`).

pub mod aliases;
pub mod check;
pub mod detach;
pub mod dump;
pub mod peers;
pub mod report;
pub mod services;
pub mod table;
