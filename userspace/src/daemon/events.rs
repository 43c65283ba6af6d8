//! The event loop: signals, address and link changes, the reconcile tick
//! and eviction sweeps, until SIGINT or SIGTERM.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use log::{error, info};
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::watch,
};

use super::{ConfigStatus, DaemonError, Live};
use crate::{
    bpf::attach::Attacher,
    foreign::Janitor,
    inventory::{self, HostTable},
    serve::web_config::{self, WebConfig},
};

/// How often attachments are re-checked without an event: this catches an
/// interface whose index changed between two events that were coalesced.
pub(super) const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// The signals the daemon answers, installed before anything else starts
/// so that a signal during start-up still stops it cleanly.
pub(super) struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Self, DaemonError> {
        Ok(Self {
            interrupt: handler(SignalKind::interrupt(), "SIGINT")?,
            terminate: handler(SignalKind::terminate(), "SIGTERM")?,
            hangup: handler(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

fn handler(kind: SignalKind, name: &'static str) -> Result<Signal, DaemonError> {
    signal(kind).map_err(|source| DaemonError::Signal {
        signal: name,
        source,
    })
}

/// What the loop works on.
pub(super) struct Running<'a> {
    pub signals: Signals,
    pub attacher: Attacher,
    pub ebpf: aya::Ebpf,
    pub live: Arc<Live>,
    pub host: watch::Receiver<Arc<HostTable>>,
    pub config_path: &'a Path,
    pub config: watch::Sender<ConfigStatus>,
    pub web_path: Option<&'a Path>,
    pub web: watch::Sender<Arc<WebConfig>>,
    pub janitor: Option<Janitor>,
}

impl Running<'_> {
    /// Runs until SIGINT or SIGTERM, and says which.
    pub(super) async fn until_stopped(&mut self) -> &'static str {
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        let sweep_every = self
            .janitor
            .as_ref()
            .map_or(RECONCILE_EVERY, Janitor::every);
        let mut sweep = tokio::time::interval(sweep_every);
        let peers_every = self.live.peers().map_or(RECONCILE_EVERY, |p| p.every());
        let mut peer_sweep = tokio::time::interval(peers_every);
        loop {
            tokio::select! {
                _ = self.signals.interrupt.recv() => return "SIGINT",
                _ = self.signals.terminate.recv() => return "SIGTERM",
                _ = self.signals.hangup.recv() => {
                    reload(self.config_path, &self.config);
                    reload_web(self.web_path, &self.web);
                    super::malloc::trim();
                }
                changed = self.host.changed() => {
                    if changed.is_ok() {
                        self.host.borrow_and_update();
                        self.reconcile();
                    }
                }
                _ = tick.tick() => self.reconcile(),
                _ = sweep.tick(), if self.janitor.is_some() => {
                    if let Some(j) = self.janitor.as_mut() {
                        let swept = self
                            .live
                            .with_budget(|budget, snap, is_foreign| j.sweep(budget, &snap, is_foreign));
                        j.report(swept);
                    }
                }
                _ = peer_sweep.tick(), if self.live.peers().is_some() => {
                    if let Some(peers) = self.live.peers()
                        && peers.sweep_now(&self.live.host(), &self.live.config().config)
                    {
                        // The record lives in the history database.
                        self.live.history_write_failed();
                    }
                }
            }
        }
    }

    /// Re-attaches what needs it; a failure is logged and retried on the
    /// next event or tick rather than stopping the daemon.
    fn reconcile(&mut self) {
        match self.attacher.reconcile(&mut self.ebpf) {
            Ok(false) => {}
            Ok(true) => self.live.set_attachments(self.attacher.attachments()),
            Err(e) => error!(
                "attaching failed, retrying in {} s: {e}",
                RECONCILE_EVERY.as_secs()
            ),
        }
    }
}

/// Re-reads the alias file. Counts live in the kernel and are untouched; an
/// invalid file keeps the previous inventory.
fn reload(path: &Path, tx: &watch::Sender<ConfigStatus>) {
    match inventory::load_config(path) {
        Ok(config) => {
            info!(
                "SIGHUP: reloaded {} documented aliases from {}",
                config.aliases().len(),
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

/// Re-reads the web config, certificate and key included, for the
/// connections accepted from now on; like the alias file, an invalid one
/// keeps the previous.
fn reload_web(path: Option<&Path>, tx: &watch::Sender<Arc<WebConfig>>) {
    let Some(path) = path else {
        return;
    };
    match web_config::load(Some(path)) {
        Ok(web) => {
            info!(
                "SIGHUP: reloaded the web config {}: {}",
                path.display(),
                web.describe()
            );
            tx.send_replace(Arc::new(web));
        }
        Err(e) => error!("SIGHUP: keeping the previous web config: {e}"),
    }
}
