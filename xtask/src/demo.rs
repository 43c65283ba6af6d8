//! `cargo xtask demo`, written by the demo's owner; this stub only keeps
//! xtask compiling until then.

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs) -> Result<()> {
    bail!("the demo is not written yet")
}
