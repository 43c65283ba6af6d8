//! `aliasstat run`: load, attach, follow the host's addresses and the
//! alias file, forward kernel logs, serve HTTP, and keep the programs
//! attached until told to stop.

use std::{
    io,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use aya_log::EbpfLogger;
use log::{error, info, warn};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    sync::watch,
};

mod state;

pub use state::{ConfigStatus, Live};

use crate::{
    bpf::{
        attach::{AttachError, Attacher, Attachment, Hook},
        counters::{CountersError, PinnedMaps},
        load::{self, LoadError},
    },
    foreign::{ForeignBudget, Janitor, evict},
    inventory::{
        self, ConfigError, HostTable,
        interfaces::{self, InterfaceError},
    },
    serve::http::{self, BindError},
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
    pub limits: http::Limits,
    /// Foreign addresses that get series of their own.
    pub max_foreign_series: usize,
    /// Unpin the links on exit so the programs detach, instead of leaving
    /// them counting for the next start.
    pub detach_on_exit: bool,
    /// Evict foreign entries unchanged for this long; `None` never does.
    pub foreign_idle: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Interfaces(#[from] InterfaceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Counters(#[from] CountersError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Attach(#[from] Box<AttachError>),
    #[error(transparent)]
    Evict(#[from] evict::EvictError),
    #[error("failed to install the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
}

pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let interfaces = if opts.interfaces.is_empty() {
        let found = interfaces::with_default_route()?;
        info!("no --interface given; watching the default-route interfaces {found:?}");
        found
    } else {
        opts.interfaces
    };
    // Handlers first, so a signal during start-up still stops cleanly.
    let mut sigint = handler(SignalKind::interrupt(), "SIGINT")?;
    let mut sigterm = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut sighup = handler(SignalKind::hangup(), "SIGHUP")?;

    // A broken file at start is an error; on reload it only logs (below).
    let config = inventory::load_config(&opts.config)?;
    info!(
        "{} documented aliases from {}",
        config.aliases.len(),
        opts.config.display()
    );
    let (config_tx, config_rx) = watch::channel(ConfigStatus {
        config: Arc::new(config),
        last_reload_success: true,
        last_reload: SystemTime::now(),
    });
    let (host_tx, mut host_rx) = watch::channel(Arc::new(HostTable::default()));
    tokio::spawn(inventory::watch(host_tx));
    tokio::spawn(log_host_changes(host_rx.clone(), config_rx.clone()));

    let mut ebpf = load::load(&opts.bpffs, opts.map_capacity)?;
    forward_kernel_logs(&mut ebpf);
    let mut attacher = Attacher::new(&opts.bpffs, opts.hook, &interfaces, interfaces::Kernel);
    attacher.reconcile(&mut ebpf).map_err(Box::new)?;
    let live = Arc::new(Live {
        counters: Box::new(PinnedMaps::open(&opts.bpffs)?),
        host: host_rx.clone(),
        config: config_rx,
        attachments: RwLock::new(attacher.attachments()),
        address_capacity: load::address_capacity(&ebpf)?,
        foreign: std::sync::Mutex::new(ForeignBudget::new(opts.max_foreign_series)),
    });
    // Ready means the inventory is known too: wait for the first dump
    // (a few milliseconds; bounded so a stuck netlink cannot hold start-up).
    if tokio::time::timeout(FIRST_DUMP_WAIT, host_rx.changed())
        .await
        .is_err()
    {
        warn!(
            "no address dump from rtnetlink after {} s; serving without it for now",
            FIRST_DUMP_WAIT.as_secs()
        );
    }
    let listener = http::bind(opts.listen).await?;
    tokio::spawn(http::serve(
        listener,
        live.clone(),
        opts.max_foreign_series,
        opts.limits,
    ));
    info!(
        "ready: counting on {}; maps pinned under {}; metrics on http://{}/metrics",
        describe(&attacher.attachments()),
        opts.bpffs.display(),
        opts.listen
    );

    // Link events come through the host table; the tick also catches an
    // interface whose index changed between two events we coalesced.
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    let mut janitor = opts
        .foreign_idle
        .map(|idle| Janitor::new(&opts.bpffs, idle))
        .transpose()?;
    // Without eviction the branch below is disabled.
    let mut sweep = tokio::time::interval(janitor.as_ref().map_or(RECONCILE_EVERY, Janitor::every));
    let stop = loop {
        tokio::select! {
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = sighup.recv() => reload(&opts.config, &config_tx),
            changed = host_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                host_rx.borrow_and_update();
                reconcile(&mut attacher, &mut ebpf, &live);
            }
            _ = tick.tick() => reconcile(&mut attacher, &mut ebpf, &live),
            _ = sweep.tick(), if janitor.is_some() => {
                if let Some(j) = janitor.as_mut() {
                    let swept = live.with_budget(|budget, snap, is_foreign| j.sweep(budget, &snap, is_foreign));
                    j.report(swept);
                }
            }
        }
    };
    if opts.detach_on_exit {
        attacher.unpin_all().map_err(Box::new)?;
        drop(ebpf);
        info!("{stop}: detached from {}", interfaces.join(", "));
    } else {
        info!(
            "{stop}: exiting; the programs stay attached through their pinned links and keep counting (`aliasstat detach` removes them)"
        );
    }
    Ok(())
}

const RECONCILE_EVERY: Duration = Duration::from_secs(5);

const FIRST_DUMP_WAIT: Duration = Duration::from_secs(5);

/// Re-attaches what needs it; a failure is logged and retried on the next
/// event or tick rather than stopping the daemon.
fn reconcile(attacher: &mut Attacher, ebpf: &mut aya::Ebpf, live: &Live) {
    match attacher.reconcile(ebpf) {
        Ok(false) => {}
        Ok(true) => {
            *live
                .attachments
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = attacher.attachments();
        }
        Err(e) => error!(
            "attaching failed, retrying in {} s: {e}",
            RECONCILE_EVERY.as_secs()
        ),
    }
}

/// Re-reads the alias file. Counts live in the kernel and are untouched; an
/// invalid file keeps the previous inventory.
fn reload(path: &std::path::Path, tx: &watch::Sender<ConfigStatus>) {
    match inventory::load_config(path) {
        Ok(config) => {
            info!(
                "SIGHUP: reloaded {} documented aliases from {}",
                config.aliases.len(),
                path.display()
            );
            tx.send_replace(ConfigStatus {
                config: Arc::new(config),
                last_reload_success: true,
                last_reload: SystemTime::now(),
            });
        }
        Err(e) => {
            error!("SIGHUP: keeping the previous alias inventory: {e}");
            tx.send_modify(|status| {
                status.last_reload_success = false;
                status.last_reload = SystemTime::now();
            });
        }
    }
}

/// Logs every address that appears on or leaves the host, with its state:
/// the audit trail of aliases coming and going.
async fn log_host_changes(
    mut host: watch::Receiver<Arc<HostTable>>,
    config: watch::Receiver<ConfigStatus>,
) {
    // The first table is the start-up dump: a baseline, not a change.
    if host.changed().await.is_err() {
        return;
    }
    let mut before = host.borrow_and_update().clone();
    info!(
        "found {} addresses on this host",
        before.addresses().count()
    );
    while host.changed().await.is_ok() {
        let now = host.borrow_and_update().clone();
        let config = config.borrow().config.clone();
        for change in inventory::changes(&before, &now, &config) {
            info!("{change}");
        }
        before = now;
    }
}

fn handler(
    kind: SignalKind,
    name: &'static str,
) -> Result<tokio::signal::unix::Signal, DaemonError> {
    signal(kind).map_err(|source| DaemonError::Signal {
        signal: name,
        source,
    })
}

/// Relays aya-log records from the kernel side into this process's log.
fn forward_kernel_logs(ebpf: &mut aya::Ebpf) {
    let logger = match EbpfLogger::init(ebpf) {
        Ok(logger) => logger,
        Err(e) => {
            warn!("kernel-side log messages will not be shown: {e}");
            return;
        }
    };
    // SAFETY: the logger owns the ring buffer's fd, and AsyncFd owns the
    // logger, so the fd outlives its registration.
    let registered =
        unsafe { AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    let mut fd = match registered {
        Ok(fd) => fd,
        Err(e) => {
            warn!(
                "kernel-side log messages will not be shown: {}",
                e.into_parts().1
            );
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return;
            };
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}

/// `vb (tc ingress, tc egress), eth0 (…)`
fn describe(attachments: &[Attachment]) -> String {
    // (interface, hooks, present), in the order given.
    let mut out: Vec<(&str, Vec<String>, bool)> = Vec::new();
    for a in attachments {
        let hook = format!("{} {}", a.hook, a.direction.hook_side());
        match out.last_mut() {
            Some((iface, hooks, _)) if *iface == a.iface => hooks.push(hook),
            _ => out.push((&a.iface, vec![hook], a.ifindex.is_some())),
        }
    }
    out.iter()
        .map(|(iface, hooks, present)| {
            if *present {
                format!("{iface} ({})", hooks.join(", "))
            } else {
                format!("{iface} (waiting for it to exist)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use common::Direction;

    use super::*;

    #[test]
    fn describes_attachments_per_interface() {
        let a = |iface: &str, hook, direction| Attachment {
            iface: iface.into(),
            ifindex: (iface != "late").then_some(7),
            hook,
            direction,
        };
        let attached = [
            a("vb", Hook::Xdp, Direction::Rx),
            a("vb", Hook::Tc, Direction::Tx),
            a("eth0", Hook::Tc, Direction::Rx),
            a("eth0", Hook::Tc, Direction::Tx),
            a("late", Hook::Tc, Direction::Rx),
            a("late", Hook::Tc, Direction::Tx),
        ];
        assert_eq!(
            describe(&attached),
            "vb (xdp ingress, tc egress), eth0 (tc ingress, tc egress), late (waiting for it to exist)"
        );
    }
}
