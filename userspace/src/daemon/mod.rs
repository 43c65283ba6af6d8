//! `aliasstat run`: load, attach, follow the host's addresses and the
//! alias file, forward kernel logs, serve HTTP, and keep the programs
//! attached until told to stop.

mod events;
mod logs;
mod malloc;
mod start;
mod state;

use std::{
    io,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use log::info;
pub use state::{ConfigStatus, Live, Parts};

use self::events::{Running, Signals};
use crate::{
    bpf::{
        attach::{AttachError, Hook},
        counters::CountersError,
        load::{LoadError, PeerTracking},
        memory::MemoryError,
    },
    foreign::{Janitor, evict},
    history::{self, recorder::Recorder},
    inventory::{ConfigError, interfaces::InterfaceError},
    peers::{PeersError, Retention},
    serve::{
        http::{self, BindError},
        web_config::WebConfigError,
    },
};

pub struct Options {
    /// Interfaces to watch; empty means those with a default route.
    pub interfaces: Vec<String>,
    pub hook: Hook,
    pub map_capacity: u32,
    pub bpffs: PathBuf,
    /// The alias inventory file.
    pub config: PathBuf,
    pub listen: std::net::SocketAddr,
    /// `--web.config.file`: TLS and basic auth; `None` is plain HTTP.
    pub web_config: Option<PathBuf>,
    pub limits: http::Limits,
    /// Foreign addresses that get series of their own.
    pub max_foreign_series: usize,
    /// Unpin the links on exit so the programs detach, instead of leaving
    /// them counting for the next start.
    pub detach_on_exit: bool,
    /// Evict foreign entries unchanged for this long; `None` never does.
    pub foreign_idle: Option<Duration>,
    /// `--peers`, `--peer-capacity` and the remote prefixes.
    pub peer_tracking: PeerTracking,
    /// `--peer-idle`, `--peer-retention`, `--state-dir`.
    pub peer_retention: Retention,
    /// Per-service counting; `None` is `--services off`.
    pub services: Option<ServiceOptions>,
    /// Where and how often to record the history; `None` keeps none.
    pub history: Option<history::recorder::Options>,
}

/// `--cgroup-root` and `--max-service-series`.
pub struct ServiceOptions {
    /// The cgroup v2 directory to attach to; the cgroup2 mount when `None`.
    pub cgroup_root: Option<PathBuf>,
    pub max_series: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Interfaces(#[from] InterfaceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Counters(#[from] CountersError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    #[error(transparent)]
    Attach(#[from] Box<AttachError>),
    #[error(transparent)]
    Evict(#[from] evict::EvictError),
    #[error(transparent)]
    Peers(#[from] PeersError),
    #[error(transparent)]
    Services(#[from] crate::services::ServicesError),
    #[error("failed to install the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
}

pub async fn run(mut opts: Options) -> Result<(), DaemonError> {
    malloc::tune();
    let interfaces = start::watched_interfaces(opts.interfaces.clone())?;
    let signals = Signals::install()?;
    let mut inventory = start::inventory(&opts.config)?;
    let web = start::web_config(opts.web_config.as_deref())?;
    let (fresh_maps, loaded) = (
        history::recorder::fresh_maps(&opts.bpffs),
        SystemTime::now(),
    );
    let start::Kernel {
        attacher,
        memory,
        mut ebpf,
    } = start::kernel(&opts, &interfaces)?;
    let services = start::services(&opts, &mut ebpf)?;
    let live = start::live(&opts, &ebpf, &attacher, memory, &inventory, services)?;
    start::first_dump(&mut inventory.host).await;
    let recorder = opts
        .history
        .take()
        .map(|h| Recorder::start(h, &opts.bpffs, live.clone(), fresh_maps, loaded));
    start::serve(&opts, live.clone(), web.subscribe()).await?;
    info!(
        "ready: counting on {}; maps pinned under {}; metrics on {}://{}/metrics ({})",
        logs::describe(&attacher.attachments()),
        opts.bpffs.display(),
        web.borrow().scheme(),
        opts.listen,
        web.borrow().describe()
    );
    // What start-up parsed and dumped is garbage now.
    malloc::trim();
    let janitor = opts
        .foreign_idle
        .map(|idle| Janitor::new(&opts.bpffs, idle))
        .transpose()?;
    let mut running = Running {
        signals,
        attacher,
        ebpf,
        live,
        host: inventory.host,
        config_path: &opts.config,
        config: inventory.config,
        web_path: opts.web_config.as_deref(),
        web,
        janitor,
    };
    let stop = running.until_stopped().await;
    if let Some(recorder) = recorder {
        recorder.finish().await;
    }
    if opts.detach_on_exit {
        running.attacher.unpin_all().map_err(Box::new)?;
        drop(running);
        info!("{stop}: detached from {}", interfaces.join(", "));
    } else {
        info!(
            "{stop}: exiting; the programs stay attached through their pinned links and keep counting (`aliasstat detach` removes them)"
        );
    }
    Ok(())
}
