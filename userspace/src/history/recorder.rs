//! The daemon's side of the history: a sample at start, one at every
//! multiple of `--history-interval`, and a last one on SIGINT/SIGTERM.
//!
//! The store failing never stops counting or serving: the failure is
//! logged and counted in `aliasstat_history_write_errors_total`, the
//! sampler keeps its last committed baseline, and the next interval that
//! can be written covers the time since then (its totals complete, its
//! rate left out of percentiles as it spans more than one slot).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aya::maps::MapInfo;
use log::{error, info, warn};
use tokio::{sync::oneshot, task::JoinHandle};

use super::{
    retention::{self, Compacted},
    sampler::{Epoch, Resumed, Sampler},
    store::{Store, StoreError},
};
use crate::{bpf::pins, daemon::Live};

#[derive(Clone, Debug)]
pub struct Options {
    pub state_dir: PathBuf,
    pub step: Duration,
}

/// Whether no maps are pinned under `bpffs` yet, so that the daemon about
/// to load will create them: call before loading.
pub fn fresh_maps(bpffs: &Path) -> bool {
    pins::layouts(bpffs).is_ok_and(|p| p.is_empty())
}

/// The history task, until [`Recorder::finish`].
pub struct Recorder {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts sampling the counters `live` reads, the maps under `bpffs`
    /// being those loaded at `started` (created then if `fresh_maps`).
    pub fn start(
        opts: Options,
        bpffs: &Path,
        live: Arc<Live>,
        fresh_maps: bool,
        started: SystemTime,
    ) -> Self {
        let worker = Worker {
            step_ms: opts.step.as_millis() as i64,
            state_dir: opts.state_dir,
            epoch: epoch(bpffs),
            fresh_maps,
            started_ms: millis(started),
            live,
            store: None,
            sampler: None,
            next_compaction_ms: 0,
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(worker.run(stopped));
        Self { stop, task }
    }

    /// Takes the last sample and returns when it is stored (or failed).
    pub async fn finish(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            error!("history: the last sample failed: {e}");
        }
    }
}

struct Worker {
    step_ms: i64,
    state_dir: PathBuf,
    epoch: Epoch,
    fresh_maps: bool,
    started_ms: i64,
    live: Arc<Live>,
    store: Option<Store>,
    sampler: Option<Sampler>,
    next_compaction_ms: i64,
}

/// Retention runs at the first sample and then daily.
const COMPACT_EVERY_MS: i64 = 86_400_000;

impl Worker {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        self = self.sample_off_runtime(None).await;
        let mut target = next_boundary(self.step_ms, millis(SystemTime::now()));
        loop {
            let wait = Duration::from_millis((target - millis(SystemTime::now())).max(0) as u64);
            let last = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                _ = &mut stop => true,
            };
            self = self.sample_off_runtime((!last).then_some(target)).await;
            if last {
                return;
            }
            // After a suspend or a clock step, start again from now.
            let now = millis(SystemTime::now());
            target = if target + self.step_ms > now {
                target + self.step_ms
            } else {
                next_boundary(self.step_ms, now)
            };
        }
    }

    /// SQLite blocks: the sample runs on the blocking pool.
    async fn sample_off_runtime(mut self, boundary: Option<i64>) -> Self {
        tokio::task::spawn_blocking(move || {
            self.sample(boundary);
            self
        })
        .await
        .expect("the history sample does not panic")
    }

    /// One sample, ending at `boundary` when the timer fired for one (the
    /// timer may wake a hair early or late; the slot is what matters) and
    /// now otherwise.
    fn sample(&mut self, boundary: Option<i64>) {
        let now_ms = boundary.unwrap_or_else(|| millis(SystemTime::now()));
        if let Err(e) = self.record(now_ms) {
            self.failed(&e);
        }
    }

    fn record(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let store = match &mut self.store {
            Some(store) => store,
            None => self.store.insert(Store::open(&self.state_dir)?),
        };
        let sampler = match &mut self.sampler {
            Some(sampler) => sampler,
            None => {
                let stored = store.baseline()?;
                let (sampler, resumed) = Sampler::resume(
                    self.step_ms,
                    self.epoch.clone(),
                    stored.as_ref(),
                    self.fresh_maps,
                    self.started_ms,
                );
                log_resumed(resumed, store.path());
                self.sampler.insert(sampler)
            }
        };
        let (snap, host, config) = match self.live.counts_now() {
            Ok(read) => read,
            Err(e) => {
                warn!("history: no sample at this interval: {e}");
                return Ok(());
            }
        };
        let pending = sampler.interval(&snap, &host, &config, now_ms);
        store.write(pending.window, &pending.traffic, &pending.baseline)?;
        sampler.committed(pending);
        if now_ms >= self.next_compaction_ms {
            let done = retention::compact(store, now_ms)?;
            if done != Compacted::default() {
                info!(
                    "history: {} intervals expired, {} hours rolled up",
                    done.expired, done.rolled_hours
                );
            }
            self.next_compaction_ms = now_ms + COMPACT_EVERY_MS;
        }
        Ok(())
    }

    /// Counted and logged; the store is opened afresh for the next try.
    fn failed(&mut self, e: &StoreError) {
        self.live.history_write_failed();
        self.store = None;
        error!(
            "history: {e}; counting and serving go on, and the next interval (every {} s) retries",
            self.step_ms / 1000
        );
    }
}

fn log_resumed(resumed: Resumed, path: &Path) {
    match resumed {
        Resumed::Continued { since_ms } => info!(
            "history: {} continues from its last sample at {}",
            path.display(),
            super::period::format_ms(since_ms)
        ),
        Resumed::NewMaps {
            last_ms: Some(last),
        } => info!(
            "history: the counters are new since the last sample at {} (reboot, detach): counting from this start, and the time between is recorded as missing",
            super::period::format_ms(last)
        ),
        Resumed::NewMaps { last_ms: None } => info!("history: recording into {}", path.display()),
        Resumed::Unknown => warn!(
            "history: no baseline in {} for the pinned maps; their counts so far belong to no known interval, and counting starts now",
            path.display()
        ),
    }
}

fn next_boundary(step_ms: i64, now_ms: i64) -> i64 {
    (now_ms.div_euclid(step_ms) + 1) * step_ms
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// This boot and the address maps under `bpffs`. An epoch that cannot be
/// read has no maps, and no baseline ever continues it.
fn epoch(bpffs: &Path) -> Epoch {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_or_else(|_| String::from("unknown"), |b| b.trim().to_owned());
    let maps = pins::layouts(bpffs)
        .map(|found| {
            found
                .all()
                .flat_map(|v| {
                    let dir = pins::maps_dir(bpffs, v);
                    pins::address_maps(v).iter().map(move |name| dir.join(name))
                })
                .filter_map(|path| MapInfo::from_pin(path).ok())
                .map(|info| info.id())
                .collect()
        })
        .unwrap_or_default();
    Epoch { boot, maps }
}
