//! Flags and help text. The doc comments here are the user manual.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use aliasstat::bpf::attach::Hook;
use clap::{Args, Parser, Subcommand};
use common::names::{
    DEFAULT_ADDRESS_CAPACITY, DEFAULT_PEER_CAPACITY, DEFAULT_PEER_V4_PREFIX, DEFAULT_PEER_V6_PREFIX,
};

/// Per-address traffic accounting for Linux hosts with many IP aliases.
///
/// aliasstat counts packets and bytes per IP address (secondary addresses,
/// labels such as eth0:1, floating VIPs, loopback service addresses) with an
/// eBPF program on the NIC: by destination address on ingress and by source
/// address on egress.
///
/// The alias inventory is /etc/aliasstat/aliases.toml unless --config says
/// otherwise. The systemd unit aliasstat.service runs `aliasstat run`;
/// `systemctl enable --now aliasstat` starts it (the Debian package
/// installs it without enabling it). `aliasstat <command> --help`, or the
/// page aliasstat-<command>(1), explains each command and its flags.
#[derive(Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Count on the named interfaces, follow their addresses, and serve
    /// Prometheus metrics, until SIGINT or SIGTERM.
    ///
    /// Needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or root). The maps and
    /// the programs' links are pinned under --bpffs: on SIGINT or SIGTERM
    /// the daemon exits and the kernel keeps counting, and the next start
    /// adopts the links, so a restart or an upgrade loses no packet. Use
    /// --detach-on-exit, or `aliasstat detach`, to remove the programs.
    /// Interfaces that do not exist yet are waited for; one deleted and
    /// created again is re-attached. SIGHUP reloads the alias file and the
    /// web config (certificate and key included).
    Run(RunArgs),
    /// Print the counters from the pinned maps, summed over CPUs.
    ///
    /// "rx" rows are keyed by destination address (ingress), "tx" rows by
    /// source address (egress). Bytes are IP-layer bytes (IP header plus
    /// payload); a GSO/GRO packet counts as the wire packets it stands for.
    /// The non_ip bucket counts frames that are not IPv4/IPv6 (ARP, LLDP,
    /// malformed IP) in frame bytes; overflow counts IP packets that found
    /// the address map full.
    Dump(DumpArgs),
    /// List every known address: where it lives, its alias and owner, its
    /// state, and its counts.
    ///
    /// States: documented (in the alias file and on this host), absent (in
    /// the file, not on this host, e.g. a VIP the peer holds), undocumented
    /// (on this host, not in the file), foreign (neither: broadcast,
    /// multicast, or traffic for an address that has left). Counts come
    /// from the pinned maps and are summed over the interfaces where
    /// packets were seen.
    Aliases(AliasesArgs),
    /// Compare the alias file with the addresses on this host.
    ///
    /// Prints undocumented addresses, documented aliases that are missing,
    /// and aliases configured on another interface than the file says.
    /// Loopback and link-local addresses count only if the file names them.
    /// Needs no privileges and no BPF.
    ///
    /// When aliases name their `service`, also asks the daemon at --url
    /// (as `aliasstat services` does) and prints every alias whose traffic
    /// another unit received, and every documented unit that sent from an
    /// address that is not its alias, both since the daemon started.
    ///
    /// Exit status: 0 when file, host and traffic agree, 1 when they
    /// drift, 2 when the file is invalid or documents services and the
    /// daemon cannot be asked (not running, or --services off).
    Check(CheckArgs),
    /// Live traffic per address, like top: which address, owned by whom,
    /// is taking the traffic right now.
    ///
    /// Reads a running `aliasstat run` over HTTP (no root needed) and shows
    /// one row per address: alias, address, interface, state, owner, rx and
    /// tx per second over the last --interval, and the counters' totals.
    /// Undocumented addresses with traffic show in yellow, traffic for
    /// absent or foreign addresses in red, both marked with `!`. Keys: r t
    /// a n sort by rx, tx, total, name; i inverts; / filters; b switches
    /// bits/packets; p pauses; ↑ ↓ highlight a row and Enter opens its
    /// address's peers with live rates, where s switches to the address's
    /// services (units with their rates, exact counts since the daemon
    /// attached and processes, then unserved) and back (Esc returns); ?
    /// helps; q quits. If the daemon goes away,
    /// top says so and reconnects by itself.
    ///
    /// When stdout is not a terminal, or with --once or --json, prints two
    /// samples' rates once and exits, in raw numbers (bits/s, packets/s).
    Top(TopArgs),
    /// Who still talks with each address, and when they last did: the
    /// question to answer before removing an alias.
    ///
    /// Lists, for one address (or alias name) or for all, every remote peer
    /// with rx and tx packets and bytes and the first and last time seen,
    /// and per address: the distinct peers, the last traffic, and whether
    /// the list is complete (a list is incomplete when packets found the
    /// daemon's peer table full; raise --peer-capacity). Peers stay listed
    /// for the daemon's --peer-retention after their last packet. Reads a
    /// running `aliasstat run` over HTTP, like top.
    ///
    /// --idle 7d lists the addresses with no traffic in the last 7 days,
    /// the candidates for removal; for a named address that is not silent,
    /// it lists who talked with it in that time instead.
    Peers(PeersArgs),
    /// Which service (cgroup v2, systemd unit) received and sent what on
    /// each local address, and what arrived that no socket took.
    ///
    /// Reads a running `aliasstat run` over HTTP (/api/v1/services), like
    /// top. One row per address and service: packets delivered to the
    /// service's sockets (RX) and sent from them (TX), in the same wire
    /// packets and IP bytes as the address counters; then the address's
    /// "(unserved)" row: what arrived for it and reached no socket (UDP or
    /// TCP to a closed port, ICMP echo the kernel answers itself, drops
    /// before delivery), counted since the daemon started. A cgroup without
    /// a unit shows as its path. Give an ADDRESS or ALIAS to see one
    /// address, or --unit to see every address one unit used (the
    /// source-address question: does it send from its alias?).
    Services(ServicesArgs),
    /// Traffic and the Nth percentile per alias, owner or address over a
    /// billing month or a period, from the daemon's history or from
    /// Prometheus.
    ///
    /// Totals are the packets and bytes in (to the address) and out (from
    /// it). The percentile is of the interval bit rates: sort the N
    /// intervals that have samples and take the one at ⌈p·N/100⌉. Intervals
    /// when no daemon ran are missing, not zero: they are left out of N,
    /// and the first line (or the intervals_* columns) says how many of the
    /// period's intervals had samples. Traffic the kernel counted while the
    /// daemon was stopped is in the totals, but not in any interval's rate.
    /// Times are UTC.
    Report(ReportArgs),
    /// Remove every program, link and pinned map aliasstat left under
    /// --bpffs, and say what was removed.
    ///
    /// This drops the counts. Stop `aliasstat run` first: while it runs, its
    /// open links keep the programs attached until it exits.
    Detach(DetachArgs),
    /// Write the man pages and the bash, zsh and fish completions into DIR
    /// (DIR/man, DIR/completions); `cargo xtask deb` packages them.
    #[command(hide = true)]
    Docs {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Args)]
pub struct ConfigArg {
    /// The alias inventory (TOML, one [[alias]] table per alias with name,
    /// address, and optionally owner, purpose, interface and commit_mbps). A missing
    /// default file means nothing is documented.
    #[arg(long, value_name = "FILE", default_value = aliasstat::inventory::DEFAULT_PATH)]
    pub config: PathBuf,
}

#[derive(Args)]
pub struct BpffsArg {
    /// Directory on a bpffs where the maps are pinned.
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf/aliasstat")]
    pub bpffs: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    /// Interface to count on; repeat for several. Default: every interface
    /// that carries an IPv4 or IPv6 default route.
    #[arg(long, short, value_name = "IF")]
    pub interface: Vec<String>,

    /// Hook for ingress counting: tc (tcx on kernel 6.6+, clsact before) or
    /// xdp (earlier in the path; egress stays on tc).
    #[arg(long, value_enum, default_value_t = Hook::Tc)]
    pub hook: Hook,

    /// Maximum (interface, direction, address) entries of each address
    /// family: IPv4 and IPv6 have a map each. Packets for new addresses
    /// beyond it are counted in the overflow bucket. Applies only when the
    /// maps are created: an already pinned map keeps its size. Each entry
    /// takes 16 bytes of kernel memory per possible CPU.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_ADDRESS_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub map_capacity: u32,

    #[command(flatten)]
    pub bpffs: BpffsArg,

    /// Reloaded on SIGHUP; an invalid file on reload keeps the previous
    /// inventory and logs why.
    #[command(flatten)]
    pub config: ConfigArg,

    /// Address and port for /metrics, /api/v1/aliases and /healthz.
    #[arg(long, value_name = "ADDR:PORT", default_value = aliasstat::serve::http::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Foreign addresses (neither on this host nor documented, e.g.
    /// multicast, broadcast, forwarded or scanned) that get per-address
    /// series, first seen first; the rest are summed per interface into
    /// aliasstat_foreign_other_*_total. Bounds the series count under a
    /// scan or a spoofed flood.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_foreign_series: usize,

    /// Seconds after which a foreign address (neither on this host nor
    /// documented) with no new traffic is removed from the map, its counts
    /// moving to aliasstat_foreign_other_*_total, so scans and floods cannot
    /// fill the map for good. 0 never evicts.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub foreign_idle: u64,

    /// TLS and basic auth for every endpoint (/healthz included), in the
    /// YAML format of Prometheus exporter-toolkit (node_exporter's
    /// --web.config.file): tls_server_config with cert_file, key_file,
    /// client_ca_file, client_auth_type and min_version, and
    /// basic_auth_users with bcrypt hashes. Other keys are errors. Re-read
    /// on SIGHUP; an invalid file then keeps the previous one and logs why.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config: Option<PathBuf>,

    /// Simultaneous HTTP connections; more wait in the kernel's backlog.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// On SIGINT/SIGTERM, detach the programs. By default they stay
    /// attached through their pinned links and keep counting until the next
    /// start adopts them, so a restart or upgrade loses no packet; use
    /// `aliasstat detach` to remove them for good.
    #[arg(long)]
    pub detach_on_exit: bool,

    /// Count per service: cgroup_skb programs on the cgroup v2 root count,
    /// per local address, what each cgroup's sockets receive and send
    /// (/api/v1/services, `aliasstat services`, aliasstat_service_* and
    /// aliasstat_unserved_* metrics). They count this network namespace
    /// only, and detach when the daemon exits.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub services: Switch,

    /// The cgroup v2 directory the service programs attach to (its whole
    /// subtree is counted). Default: the cgroup2 mount found in
    /// /proc/self/mountinfo (/sys/fs/cgroup, or /sys/fs/cgroup/unified on
    /// a hybrid host).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,

    /// (address, unit) pairs that get aliasstat_service_* series of their
    /// own, first seen first; the rest of each address is summed into
    /// unit="other".
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_service_series: usize,

    /// Seconds a client has to send its request headers before the
    /// connection is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,

    /// Track who each address talks with (`aliasstat peers`,
    /// /api/v1/peers). off removes the peer table from the programs when
    /// they are loaded, at no per-packet cost.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    pub peers: Switch,

    /// Maximum (interface, local address, peer) pairs in each of the
    /// kernel's two peer tables, one per family (112 bytes a pair for IPv4,
    /// 136 for IPv6, whatever the CPU count). A packet whose pair finds its
    /// table full is still counted for its address, and marks that
    /// address's peer list incomplete. Applies only when a table is
    /// created: an already pinned one keeps its size.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PEER_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_capacity: u32,

    /// Remote IPv4 addresses are grouped into prefixes of this length (32:
    /// each address is a peer of its own).
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_PEER_V4_PREFIX,
          value_parser = clap::value_parser!(u8).range(0..=32))]
    pub peer_prefix_v4: u8,

    /// Remote IPv6 addresses are grouped into prefixes of this length. 64
    /// by default: a client's privacy addresses, which change daily, stay
    /// one peer; 128 lists every address.
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_PEER_V6_PREFIX,
          value_parser = clap::value_parser!(u8).range(0..=128))]
    pub peer_prefix_v6: u8,

    /// A pair with no packet for this long leaves the kernel's table and
    /// goes, with its exact totals, into the record under --state-dir.
    /// 30s, 15m, 1h, 2d.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration)]
    pub peer_idle: Duration,

    /// How long a peer stays listed after its last packet.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = duration)]
    pub peer_retention: Duration,

    /// Where the daemon keeps what must survive a restart besides the
    /// pinned maps: the history database (history.db, SQLite in WAL mode)
    /// that `aliasstat report` reads, which also holds the peer record (a
    /// peers.json left by an older release is imported into it once and
    /// renamed peers.json.imported).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/aliasstat")]
    pub state_dir: PathBuf,

    /// How often the history records each address's packets and bytes
    /// (30s, 5m, 1h; it must divide a day). Samples fall on multiples of
    /// it in UTC, plus one at start and one on SIGINT/SIGTERM, so a clean
    /// stop or reboot loses nothing. Billing percentiles are usually of
    /// 5-minute rates.
    #[arg(long, value_name = "DURATION", default_value = "5m",
          value_parser = aliasstat::history::parse_interval)]
    pub history_interval: Duration,

    /// Keep no history: no intervals are recorded. The peer record is
    /// still kept in history.db under --state-dir.
    #[arg(long)]
    pub no_history: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The billing month, YYYY-MM, from its --billing-day to the same day
    /// of the next month.
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"],
          required_unless_present = "from")]
    pub month: Option<String>,

    /// The day of the month billing months start on, at 00:00 UTC.
    #[arg(long, value_name = "D", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=28))]
    pub billing_day: u32,

    /// Start of the period instead of --month: YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM[:SS], UTC.
    #[arg(long, value_name = "TIME", requires = "to")]
    pub from: Option<String>,

    /// End of the period (exclusive), like --from.
    #[arg(long, value_name = "TIME", requires = "from")]
    pub to: Option<String>,

    /// One row per alias (with its owner), per owner, or per address.
    /// Undocumented addresses have no alias or owner: with alias or owner
    /// they share one row, "(undocumented)".
    #[arg(long, value_enum, default_value_t = aliasstat::history::report::By::Alias)]
    pub by: aliasstat::history::report::By,

    /// Which percentile of the interval rates, above 0 and at most 100,
    /// with up to three decimals.
    #[arg(long, value_name = "P", default_value = "95")]
    pub percentile: aliasstat::history::percentile::Percentile,

    /// The rate the percentile is of: in, out, max (the larger of the in
    /// and the out percentile) or sum (of each interval's in + out).
    #[arg(long, value_enum, default_value_t = aliasstat::history::percentile::Rule::Max)]
    pub direction: aliasstat::history::percentile::Rule,

    #[arg(long, value_enum, default_value_t = aliasstat::commands::report::Format::Table)]
    pub format: aliasstat::commands::report::Format,

    /// The daemon's --state-dir, whose history.db is read.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/aliasstat")]
    pub state_dir: PathBuf,

    /// Compute the report from a Prometheus (or Thanos, Mimir) query API
    /// at this URL instead: every host it scrapes, in one report. Each
    /// --step's value is the increase of aliasstat's counters over it.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,

    /// A PromQL label selector that narrows the series read from
    /// --prometheus, e.g. '{job="aliasstat",instance=~"web.*"}'.
    #[arg(
        long,
        value_name = "SELECTOR",
        default_value = "",
        requires = "prometheus"
    )]
    pub selector: String,

    /// With --prometheus: the interval rates are of, as the daemon's
    /// --history-interval.
    #[arg(long, value_name = "DURATION", default_value = "5m", requires = "prometheus",
          value_parser = aliasstat::history::parse_interval)]
    pub step: Duration,

    /// With --prometheus: its basic auth and the CA of its certificate.
    #[command(flatten)]
    pub access: AccessArgs,
}

/// An on/off flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// A duration flag: `500ms`, `30s`, `15m`, `6h`, `30d`.
fn duration(text: &str) -> Result<Duration, String> {
    aliasstat::top::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s, 15m, 6h or 30d"))
}

#[derive(Args)]
pub struct DumpArgs {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub bpffs: BpffsArg,
}

#[derive(Args)]
pub struct AliasesArgs {
    /// Print `{"aliases":[…]}` instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub bpffs: BpffsArg,

    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub daemon: DaemonArgs,

    /// Time between samples; rates are averaged over it. 1s, 500ms, 2.5s
    /// or 1m; from 100ms to 1h.
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = aliasstat::top::parse_interval)]
    pub interval: Duration,

    /// Take two samples one --interval apart, print their rates as a
    /// table, and exit. The default when stdout is not a terminal.
    #[arg(long)]
    pub once: bool,

    /// Like --once, but print `{"interval_seconds":…,"aliases":[…]}` with
    /// bits_per_second, packets_per_second, bytes and packets for rx and tx.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PeersArgs {
    /// An address, or the name of a documented alias; every address
    /// without it.
    #[arg(value_name = "ADDRESS|ALIAS")]
    pub target: Option<String>,

    /// Print the daemon's JSON (the document of /api/v1/peers) instead of
    /// tables.
    #[arg(long)]
    pub json: bool,

    /// Only the peers seen in the last DURATION (e.g. 1h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub since: Option<Duration>,

    /// List the addresses with no traffic in the last DURATION (e.g. 7d).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub idle: Option<Duration>,

    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// How `top`, `peers`, `services` and `check` reach a running daemon.
#[derive(Args)]
pub struct DaemonArgs {
    /// Where `aliasstat run` serves its API: http://HOST:PORT of its
    /// --listen, or https://HOST:PORT when its --web.config.file sets up
    /// TLS. Use an ssh tunnel for another host's loopback.
    #[arg(long, value_name = "URL", default_value = aliasstat::top::DEFAULT_URL)]
    pub url: String,

    #[command(flatten)]
    pub access: AccessArgs,
}

/// Credentials and trust for an HTTP API behind TLS or basic auth: the
/// daemon's (its --web.config.file), or the Prometheus `report` asks.
#[derive(Args)]
pub struct AccessArgs {
    /// User for the server's basic auth (the daemon's basic_auth_users,
    /// or Prometheus's for `report --prometheus`). The password comes from
    /// --password-file or from $ALIASSTAT_PASSWORD, never from the command
    /// line, where `ps` shows it to everyone.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// File holding the --user's password (one trailing newline is
    /// ignored). Without it, $ALIASSTAT_PASSWORD is used.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,

    /// PEM file of the CA certificates that an https:// URL must chain
    /// to, instead of the system's trusted CAs: for a server with a
    /// certificate from a private CA.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServicesArgs {
    /// An address or an alias name: show that address only.
    #[arg(value_name = "ADDRESS|ALIAS", conflicts_with = "unit")]
    pub target: Option<String>,

    /// Show every address this unit (or cgroup path) received on or sent
    /// from, instead of the services of each address.
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,

    /// Print JSON: `{"addresses":[…]}` as /api/v1/services serves it, or
    /// `{"unit":…,"addresses":[…]}` with --unit.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub daemon: DaemonArgs,
}

/// Where `aliasstat top` takes the --user's password from when there is
/// no --password-file.
pub const PASSWORD_ENV: &str = "ALIASSTAT_PASSWORD";

#[derive(Args)]
pub struct DetachArgs {
    #[command(flatten)]
    pub bpffs: BpffsArg,
}
