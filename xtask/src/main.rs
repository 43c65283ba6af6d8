//! `cargo xtask`: everything that needs more than a plain `cargo build`.

mod bench;
mod build;
mod cmd;
mod deb;
mod demo;
mod lint;
mod setup;
mod test;
mod workspace;

use clap::{Parser, Subcommand};

/// Set up, build, lint and test aliasstat.
///
/// Every subcommand runs `setup` first, so a fresh clone needs only
/// `cargo xtask test` (as root) or `cargo xtask build`.
#[derive(Parser)]
#[command(bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what building and testing need: rust-src for the nightly
    /// toolchain, bpf-linker (built against the nightly's own LLVM into
    /// target/tools), cargo-deb (into target/tools), and, as root, the Debian packages the root tests use and
    /// a bpffs at /sys/fs/bpf. Safe to run again: it only does what is missing.
    Setup,
    /// Build aliasstat, with its eBPF program embedded.
    Build(build::BuildArgs),
    /// Run the whole test suite: unit tests, then the root-only integration
    /// tests in network namespaces. Needs root.
    Test(test::TestArgs),
    /// Build the Debian package target/debian/aliasstat_<version>_<arch>.deb:
    /// the release binary, its unit (installed, not enabled), the example
    /// alias file as a conffile, man pages, completions, dashboards and rules.
    Deb(deb::DebArgs),
    /// Check formatting (nightly rustfmt) and run clippy with warnings denied.
    Lint,
    /// Build aliasstat and show it counting traffic in a network-namespace lab.
    Demo(demo::DemoArgs),
    /// Measure what aliasstat costs (per packet, live throughput against
    /// nftables, scrape time and memory) and write the tables, with the
    /// machine they were measured on, to BENCHMARKS.md. Needs root.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup => setup::run(),
        Command::Build(args) => build::run(args),
        Command::Test(args) => test::run(args),
        Command::Deb(args) => deb::run(args),
        Command::Lint => lint::run(),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => {
            setup::run()?;
            build::build(build::Profile::Release)?;
            demo::run(args)
        }
    }
}
