//! The `aliasstat` command line.

mod cli;
mod docs;

use std::process::ExitCode;

use aliasstat::{
    bpf::{
        counters::{CounterSource as _, PinnedMaps},
        pins,
    },
    commands::{aliases, check, dump},
    daemon,
    inventory::{self, interfaces},
    top,
};
use anyhow::Context as _;
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aliasstat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Run(args) => {
            runtime()?.block_on(daemon::run(daemon::Options {
                interfaces: args.interface,
                hook: args.hook,
                map_capacity: args.map_capacity,
                bpffs: args.bpffs.bpffs,
                config: args.config.config,
                listen: args.listen,
                limits: aliasstat::serve::http::Limits {
                    max_connections: args.max_connections as usize,
                    header_timeout: std::time::Duration::from_secs(args.header_timeout),
                },
                max_foreign_series: args.max_foreign_series,
                detach_on_exit: args.detach_on_exit,
                foreign_idle: (args.foreign_idle > 0)
                    .then(|| std::time::Duration::from_secs(args.foreign_idle)),
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
        cli::Command::Aliases(args) => {
            let config = inventory::load_config(&args.config.config)?;
            let host = runtime()?.block_on(inventory::dump())?;
            let counts = PinnedMaps::open(&args.bpffs.bpffs)?.snapshot()?;
            let rows = inventory::rows(&host, &config, &counts);
            if args.json {
                println!("{}", aliases::json(&rows));
            } else {
                print!("{}", aliases::table(&rows));
            }
        }
        cli::Command::Detach(args) => {
            let dir = &args.bpffs.bpffs;
            let removed = pins::remove_all(dir)
                .with_context(|| format!("failed to remove the pins under {}", dir.display()))?;
            if removed.is_empty() {
                println!("nothing pinned under {}", dir.display());
            }
            for path in removed {
                let what = if path.starts_with(pins::links_dir(dir)) {
                    "link (program detached)"
                } else {
                    "map"
                };
                println!("removed {what}: {}", path.display());
            }
        }
        cli::Command::Check(args) => {
            let config = match inventory::load_config(&args.config.config) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("aliasstat: {e}");
                    return Ok(ExitCode::from(check::INVALID));
                }
            };
            let host = runtime()?.block_on(inventory::dump())?;
            let (report, code) = check::report(&inventory::drift(&host, &config));
            print!("{report}");
            return Ok(ExitCode::from(code));
        }
        cli::Command::Docs { dir } => docs::write(&dir)?,
        cli::Command::Top(args) => top::run(&top::Options {
            url: args.url,
            interval: args.interval,
            once: args.once,
            json: args.json,
        })?,
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
