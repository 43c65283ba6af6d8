//! The daemon's start-up, one named step each: which interfaces, the
//! inventory, the kernel side, the first address dump, and the server.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use log::{info, warn};
use tokio::sync::watch;

use super::{ConfigStatus, DaemonError, Live, Options, Parts, logs};
use crate::{
    bpf::{
        attach::Attacher,
        counters::{CounterSource as _, PinnedMaps},
        load,
        memory::MapMemory,
    },
    inventory::{self, HostTable, interfaces},
    peers::Peers,
    serve::{
        http,
        web_config::{self, WebConfig},
    },
    services::{Services, ServicesError, cgroups::CgroupError, kernel::netns_cookie},
};

/// How long `ready` waits for rtnetlink's first address dump (a few
/// milliseconds normally), so a stuck netlink cannot hold start-up.
const FIRST_DUMP_WAIT: Duration = Duration::from_secs(5);

/// The interfaces named, or those that carry a default route.
pub(super) fn watched_interfaces(named: Vec<String>) -> Result<Vec<String>, DaemonError> {
    if !named.is_empty() {
        return Ok(named);
    }
    let found = interfaces::with_default_route()?;
    info!("no --interface given; watching the default-route interfaces {found:?}");
    Ok(found)
}

/// The alias file and the host's addresses, each behind a watch channel
/// that the endpoints read and the event loop updates.
pub(super) struct Inventory {
    pub config: watch::Sender<ConfigStatus>,
    pub host: watch::Receiver<Arc<HostTable>>,
}

/// Loads the alias file (a broken one at start is an error; on reload it
/// only logs) and starts following the host's addresses through rtnetlink,
/// logging every change.
pub(super) fn inventory(path: &Path) -> Result<Inventory, DaemonError> {
    let config = inventory::load_config(path)?;
    info!(
        "{} documented aliases from {}",
        config.aliases().len(),
        path.display()
    );
    let (config_tx, config_rx) = watch::channel(ConfigStatus {
        config: Arc::new(config),
        last_reload_success: true,
        last_reload: SystemTime::now(),
    });
    let (host_tx, host_rx) = watch::channel(Arc::new(HostTable::default()));
    tokio::spawn(inventory::watch(host_tx));
    tokio::spawn(logs::log_host_changes(host_rx.clone(), config_rx));
    Ok(Inventory {
        config: config_tx,
        host: host_rx,
    })
}

/// `--web.config.file`, behind a watch channel so that SIGHUP can swap it
/// under the server; plain HTTP without one.
pub(super) fn web_config(
    path: Option<&Path>,
) -> Result<watch::Sender<Arc<WebConfig>>, DaemonError> {
    let web = web_config::load(path)?;
    Ok(watch::Sender::new(Arc::new(web)))
}

/// What [`kernel`] set up.
pub(super) struct Kernel {
    pub ebpf: aya::Ebpf,
    pub attacher: Attacher,
    pub memory: MapMemory,
}

/// Loads the programs with their maps pinned and attaches them to every
/// interface that exists now.
pub(super) fn kernel(opts: &Options, interfaces: &[String]) -> Result<Kernel, DaemonError> {
    // The service programs are loaded for this namespace: its cookie is a
    // load-time constant of theirs.
    let netns = match opts.services {
        Some(_) => netns_cookie().map_err(ServicesError::from)?,
        None => 0,
    };
    let mut ebpf = load::load_with(&opts.bpffs, opts.map_capacity, opts.peer_tracking, netns)?;
    // Before aya-log takes its ring buffer out of the object.
    let memory = MapMemory::of(&ebpf)?;
    logs::forward_kernel_logs(&mut ebpf);
    let mut attacher = Attacher::new(&opts.bpffs, opts.hook, interfaces, interfaces::Kernel);
    attacher.reconcile(&mut ebpf).map_err(Box::new)?;
    Ok(Kernel {
        ebpf,
        attacher,
        memory,
    })
}

/// Attaches the per-service programs, unless `--services off`.
pub(super) fn services(
    opts: &Options,
    ebpf: &mut aya::Ebpf,
) -> Result<Option<Services>, DaemonError> {
    let Some(services) = &opts.services else {
        return Ok(None);
    };
    // The ingress counts before attaching are the baseline of unserved.
    let before = PinnedMaps::open(&opts.bpffs)?.snapshot()?;
    match Services::start(
        ebpf,
        services.cgroup_root.clone(),
        &before,
        services.max_series,
    ) {
        Ok(services) => Ok(Some(services)),
        // Not asked for by path: a host (or a mount namespace, as under
        // `ip netns exec`) without cgroup2 counts addresses as before.
        Err(e @ ServicesError::Cgroup(CgroupError::NoMount)) => {
            warn!("services off: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The state every endpoint reads.
pub(super) fn live(
    opts: &Options,
    ebpf: &aya::Ebpf,
    attacher: &Attacher,
    memory: MapMemory,
    inventory: &Inventory,
    services: Option<Services>,
) -> Result<Arc<Live>, DaemonError> {
    Ok(Arc::new(Live::new(Parts {
        counters: Box::new(PinnedMaps::open(&opts.bpffs)?),
        host: inventory.host.clone(),
        config: inventory.config.subscribe(),
        attachments: attacher.attachments(),
        address_capacity: load::address_capacity(ebpf)?,
        memory,
        max_foreign_series: opts.max_foreign_series,
        peers: opts
            .peer_tracking
            .on
            .then(|| Peers::open(&opts.bpffs, opts.peer_retention.clone()))
            .transpose()?,
        services,
        history: opts.history.clone(),
    })))
}

/// Ready means the inventory is known too: waits for the first dump.
pub(super) async fn first_dump(host: &mut watch::Receiver<Arc<HostTable>>) {
    if tokio::time::timeout(FIRST_DUMP_WAIT, host.changed())
        .await
        .is_err()
    {
        warn!(
            "no address dump from rtnetlink after {} s; serving without it for now",
            FIRST_DUMP_WAIT.as_secs()
        );
    }
}

/// Binds the listen address (failing start-up if it is taken) and serves
/// in the background.
pub(super) async fn serve(
    opts: &Options,
    live: Arc<Live>,
    web: watch::Receiver<Arc<WebConfig>>,
) -> Result<(), DaemonError> {
    let listener = http::bind(opts.listen).await?;
    tokio::spawn(http::serve(listener, live, opts.limits, web));
    Ok(())
}
