//! The one-shot subcommands' results: `dump`, `aliases`, `check` and
//! `detach`, the tables among them drawn by one helper (`table`).

pub mod aliases;
pub mod check;
pub mod detach;
pub mod dump;
pub mod services;
pub mod table;
