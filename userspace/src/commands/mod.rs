//! Presentation for the one-shot subcommands: `dump`, `aliases` and
//! `check`, on one text-table helper.

pub mod aliases;
pub mod check;
pub mod dump;
pub mod table;
