//! `aliasstat peers --idle`: exactly the addresses nobody talked with in
//! the window, and for a named address still in use, who uses it.

use anyhow::{Context, Result, ensure};
use lab::harness::{Outcome, check_eq};

use crate::fixture::{Lab, Pairs};

pub fn run() -> Result<Outcome> {
    let lab = Lab::new(85)?;
    let daemon = lab.start(&[])?;
    let mut sent = Pairs::new();
    lab.exchange(&mut sent, 2, 0, &[123], 45)?;
    let silent = lab.cli(&["--idle", "1h", "--json"])?;
    let table = lab.cli(&["--idle", "1h"])?;
    let busy = lab.cli(&["shop-tls", "--idle", "1h"])?;
    daemon.stop()?;

    let silent: Vec<serde_json::Value> = serde_json::from_str(&silent)?;
    let addresses: Vec<&str> = silent
        .iter()
        .map(|o| o["address"].as_str().context("address"))
        .collect::<Result<_>>()?;
    let quiet = lab.aliases[1].to_string();
    check_eq("silent addresses", &vec![quiet.as_str()], &addresses)?;
    println!("{table}{busy}");
    ensure!(
        table.lines().count() == 2 && table.contains(&quiet) && table.contains("never"),
        "the table is not the one silent alias: {table}"
    );
    ensure!(
        busy.starts_with("not silent") && busy.contains(&lab.clients[2].to_string()),
        "`peers shop-tls --idle 1h` does not say who: {busy}"
    );
    Ok(Outcome::Passed)
}
