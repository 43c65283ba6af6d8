//! Waiting for a condition the daemon reaches on its own schedule, with a
//! bound, instead of sleeping a guessed time.

use std::{
    fmt::Debug,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

/// Calls `read` every `step` until `done` accepts what it returns, for at
/// most `within`; the last value read goes into the error.
pub fn until<T: Debug>(
    what: &str,
    within: Duration,
    step: Duration,
    mut read: impl FnMut() -> Result<T>,
    done: impl Fn(&T) -> bool,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        let value = read()?;
        if done(&value) {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not reached within {within:?}; last seen: {value:#?}");
        }
        thread::sleep(step);
    }
}

/// [`until`] at one step, named for what is polled.
pub struct Every(pub Duration);

/// Address events and counts of packets already sent arrive within
/// milliseconds.
pub const EVENTS: Every = Every(Duration::from_millis(20));

/// Each read is a Prometheus query; a few per second are plenty.
pub const QUERIES: Every = Every(Duration::from_millis(200));

impl Every {
    pub fn until<T: Debug>(
        &self,
        what: &str,
        within: Duration,
        read: impl FnMut() -> Result<T>,
        done: impl Fn(&T) -> bool,
    ) -> Result<T> {
        until(what, within, self.0, read, done)
    }
}
