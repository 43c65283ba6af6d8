//! The `aliasstat` command line.

mod cli;
mod docs;

use std::process::ExitCode;

use aliasstat::{
    bpf::counters::{CounterSource as _, PinnedMaps},
    commands::{self, aliases, check, detach, dump, report, services},
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
        cli::Command::Run(args) => run_daemon(args)?,
        cli::Command::Dump(args) => {
            let snap = PinnedMaps::open(&args.bpffs.bpffs)?.snapshot()?;
            if args.json {
                println!("{}", dump::json(&snap, &interfaces::Kernel));
            } else {
                print!("{}", dump::table(&snap, &interfaces::Kernel));
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
            let report = detach::run(dir)
                .with_context(|| format!("failed to remove the pins under {}", dir.display()))?;
            print!("{report}");
        }
        cli::Command::Check(args) => return check(args),
        cli::Command::Report(args) => print!("{}", history_report(args)?),
        cli::Command::Docs { dir } => docs::write(&dir)?,
        cli::Command::Services(args) => services(args)?,
        cli::Command::Top(args) => top::run(&top::Options {
            url: args.daemon.url.clone(),
            access: access(args.daemon.access)?,
            interval: args.interval,
            once: args.once,
            json: args.json,
        })?,
        cli::Command::Peers(args) => {
            let url = args.daemon.url.clone();
            let ask = commands::peers::Ask {
                target: args.target,
                since: args.since,
                idle: args.idle,
                json: args.json,
            };
            print!(
                "{}",
                commands::peers::run(&url, &access(args.daemon.access)?, &ask)?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_daemon(args: cli::RunArgs) -> anyhow::Result<()> {
    runtime()?.block_on(daemon::run(daemon::Options {
        interfaces: args.interface,
        hook: args.hook,
        map_capacity: args.map_capacity,
        bpffs: args.bpffs.bpffs,
        config: args.config.config,
        listen: args.listen,
        web_config: args.web_config,
        limits: aliasstat::serve::http::Limits {
            max_connections: args.max_connections as usize,
            header_timeout: std::time::Duration::from_secs(args.header_timeout),
        },
        max_foreign_series: args.max_foreign_series,
        detach_on_exit: args.detach_on_exit,
        foreign_idle: (args.foreign_idle > 0)
            .then(|| std::time::Duration::from_secs(args.foreign_idle)),
        peer_tracking: aliasstat::bpf::load::PeerTracking {
            on: args.peers == cli::Switch::On,
            capacity: args.peer_capacity,
            v4_prefix: args.peer_prefix_v4,
            v6_prefix: args.peer_prefix_v6,
        },
        peer_retention: aliasstat::peers::Retention {
            idle: args.peer_idle,
            keep: args.peer_retention,
            state_dir: args.state_dir.clone(),
        },
        services: (args.services == cli::Switch::On).then_some(daemon::ServiceOptions {
            cgroup_root: args.cgroup_root,
            max_series: args.max_service_series,
        }),
        history: (!args.no_history).then_some(aliasstat::history::recorder::Options {
            state_dir: args.state_dir,
            step: args.history_interval,
        }),
    }))?;
    Ok(())
}

/// `aliasstat services`: the daemon's matrix, selected and printed.
fn services(args: cli::ServicesArgs) -> anyhow::Result<()> {
    let url = args.daemon.url.clone();
    let client = top::client::Client::new(&url, &access(args.daemon.access)?)?;
    let doc = runtime()?.block_on(client.services())?;
    let selection = match (args.target, args.unit) {
        (_, Some(unit)) => services::Selection::Unit(unit),
        (Some(target), None) => services::Selection::Address(target),
        (None, None) => services::Selection::All,
    };
    let addresses = services::select(doc, &selection);
    match (&selection, args.json) {
        (services::Selection::Unit(unit), json) => {
            let used = services::by_unit(&addresses, unit);
            if json {
                println!("{}", services::unit_json(unit, &used));
            } else {
                print!("{}", services::unit_table(&used));
            }
        }
        (_, true) => println!("{}", services::json(addresses)),
        (_, false) => print!("{}", services::table(&addresses)),
    }
    Ok(())
}

/// `aliasstat report`, from the local history or from Prometheus.
fn history_report(args: cli::ReportArgs) -> anyhow::Result<String> {
    use aliasstat::history::{self, period};
    let (from_ms, to_ms) = match (&args.month, &args.from, &args.to) {
        (Some(month), _, _) => period::month(month, args.billing_day)?,
        (None, Some(from), Some(to)) => period::range(from, to)?,
        _ => anyhow::bail!("give the period: --month YYYY-MM, or --from and --to"),
    };
    let query = history::report::Query {
        from_ms,
        to_ms,
        by: args.by,
        percentile: args.percentile,
        rule: args.direction,
    };
    anyhow::ensure!(
        args.prometheus.is_some() || (args.access.user.is_none() && args.access.ca_file.is_none()),
        "--user, --password-file and --ca-file are for a --prometheus behind basic auth or TLS; the local history needs none"
    );
    let access = access(args.access)?;
    let made = match &args.prometheus {
        Some(url) => runtime()?.block_on(history::prometheus::report(
            url,
            &access,
            &args.selector,
            query,
            args.step.as_millis() as i64,
        ))?,
        None => history::report::local(&history::Store::open_read(&args.state_dir)?, query)?,
    };
    Ok(report::render(&made, args.format))
}

/// Exit 2 for a file that cannot be used, whatever the host says, and
/// when the file documents services that the daemon cannot be asked about.
fn check(args: cli::CheckArgs) -> anyhow::Result<ExitCode> {
    let config = match inventory::load_config(&args.config.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("aliasstat: {e}");
            return Ok(ExitCode::from(check::INVALID));
        }
    };
    let rt = runtime()?;
    let host = rt.block_on(inventory::dump())?;
    let mut service_drift = Vec::new();
    if config.aliases().iter().any(|a| a.service.is_some()) {
        let url = args.daemon.url.clone();
        let client = top::client::Client::new(&url, &access(args.daemon.access)?)?;
        match rt.block_on(client.services()) {
            Ok(doc) => service_drift = aliasstat::services::drift::find(&doc, &config),
            Err(e) => {
                eprintln!(
                    "aliasstat: the alias file documents services, which need the traffic of a daemon counting them (`aliasstat run`, services on): {e}"
                );
                return Ok(ExitCode::from(check::INVALID));
            }
        }
    }
    let (report, code) = check::report(&inventory::drift(&host, &config), &service_drift);
    print!("{report}");
    Ok(ExitCode::from(code))
}

/// `--user` with its password from `--password-file` or the environment,
/// never from the command line, where `ps` would show it.
fn access(args: cli::AccessArgs) -> anyhow::Result<top::client::Access> {
    let cli::AccessArgs {
        user,
        password_file,
        ca_file,
    } = args;
    let password = match (password_file.as_deref(), std::env::var(cli::PASSWORD_ENV)) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("failed to read --password-file {}", file.display()))?;
            // `echo secret > file` leaves a newline that is not the password's.
            let line = text.strip_suffix('\n').unwrap_or(&text);
            Some(line.strip_suffix('\r').unwrap_or(line).to_owned())
        }
        (None, Ok(password)) => Some(password),
        (None, Err(_)) => None,
    };
    anyhow::ensure!(
        user.is_none() || password.is_some(),
        "--user needs a password: put it in a file given with --password-file, or in ${}",
        cli::PASSWORD_ENV
    );
    Ok(top::client::Access {
        credentials: user.zip(password),
        ca_file,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
