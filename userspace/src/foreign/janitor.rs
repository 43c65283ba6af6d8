//! The eviction policy: how often idle foreign entries are looked for, and
//! what a sweep does with them (see [`crate::foreign::evict`]).

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use log::{info, warn};

use crate::{
    bpf::counters::{CountersError, Snapshot},
    foreign::{
        ForeignBudget,
        evict::{EvictError, IdleTracker, Maps},
    },
};

/// Evicts foreign entries unchanged for its idle time.
pub struct Janitor {
    maps: Maps,
    tracker: IdleTracker,
    idle: Duration,
}

impl Janitor {
    pub fn new(bpffs: &Path, idle: Duration) -> Result<Self, EvictError> {
        Ok(Self {
            maps: Maps::open(bpffs)?,
            tracker: IdleTracker::default(),
            idle,
        })
    }

    /// How often to sweep. Idle is judged at this granularity: a tenth of
    /// the idle time (an entry goes at most a tenth late), within
    /// [1 s, 60 s], since every sweep reads the whole map.
    pub fn every(&self) -> Duration {
        sweep_interval(self.idle)
    }

    /// Evicts the idle foreign entries of `snap`, telling `budget` which
    /// went, and returns how many did. `snap` and `budget` must come from
    /// one consistent view (`Live::with_budget`), so that no scrape falls
    /// between the read and the eviction.
    pub fn sweep(
        &mut self,
        budget: &mut ForeignBudget,
        snap: &Snapshot,
        is_foreign: &dyn Fn(IpAddr) -> bool,
    ) -> usize {
        let idle = self
            .tracker
            .idle(&snap.addresses, Instant::now(), self.idle, is_foreign);
        let mut evicted = 0;
        for key in &idle {
            match self.maps.evict(key) {
                Ok(true) => {
                    budget.evicted(key);
                    evicted += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    warn!("eviction stopped: {e}");
                    break;
                }
            }
        }
        evicted
    }

    /// Logs what a sweep did, or why it could not read the counters.
    pub fn report(&self, swept: Result<usize, CountersError>) {
        match swept {
            Ok(0) => {}
            Ok(evicted) => info!(
                "evicted {evicted} foreign addresses idle for {} s; their counts are in aliasstat_foreign_other_*_total",
                self.idle.as_secs()
            ),
            Err(e) => warn!("eviction skipped: {e}"),
        }
    }
}

/// Also the peer sweep's interval, for the same reasons.
pub(crate) fn sweep_interval(idle: Duration) -> Duration {
    (idle / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_at_a_tenth_of_the_idle_time_within_bounds() {
        // (idle seconds, sweep interval in milliseconds)
        let cases = [
            (1, 1_000),
            (5, 1_000),
            (10, 1_000),
            (25, 2_500),
            (300, 30_000),
            (600, 60_000),
            (86_400, 60_000),
        ];
        for (idle, every) in cases {
            let got = sweep_interval(Duration::from_secs(idle));
            assert_eq!(got, Duration::from_millis(every), "{idle} s");
        }
    }
}
