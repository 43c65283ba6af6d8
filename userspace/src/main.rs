//! The `aliasstat` command line.

mod cli;

use std::process::ExitCode;

use aliasstat::{
    counters::{CounterSource as _, PinnedMaps},
    daemon, dump, interfaces,
};
use anyhow::Context as _;
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aliasstat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("failed to start the async runtime")?;
            runtime.block_on(daemon::run(daemon::Options {
                interfaces: args.interface,
                hook: args.hook,
                map_capacity: args.map_capacity,
                bpffs: args.bpffs.bpffs,
            }))?;
        }
        cli::Command::Dump(args) => {
            let snap = PinnedMaps::open(&args.bpffs.bpffs)?.snapshot()?;
            if args.json {
                println!("{}", dump::json(&snap, interfaces::name));
            } else {
                print!("{}", dump::table(&snap, interfaces::name));
            }
        }
    }
    Ok(())
}
