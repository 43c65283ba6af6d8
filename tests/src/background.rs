//! Traffic that keeps going on threads of its own while a test changes the
//! host under it: paced UDP flows and echo servers, each stopped and joined
//! on drop, so a failing test leaves no sender behind.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};

/// A loop on its own thread until told to stop.
pub struct Background<T: Send + 'static> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Background<T> {
    pub fn spawn(body: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Self {
            stop,
            thread: Some(thread::spawn(move || body(&flag))),
        }
    }

    /// Tells the loop to stop, without waiting for it.
    pub fn signal(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops the loop and returns what it returned; a panic on the thread
    /// goes on here.
    pub fn finish(mut self) -> T {
        self.signal();
        match self.thread.take().expect("joined once").join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<T: Send + 'static> Drop for Background<T> {
    fn drop(&mut self) {
        self.signal();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a [`flow`] sends, how much, how often, and for how long at most.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub to: SocketAddr,
    pub payload: usize,
    pub every: Duration,
    /// Datagrams at most, so a flow that is never stopped still ends.
    pub limit: u64,
}

impl Pace {
    /// `pps` datagrams of `payload` bytes a second to `to`, without limit.
    pub fn per_second(to: SocketAddr, payload: usize, pps: u32) -> Self {
        Self {
            to,
            payload,
            every: Duration::from_secs(1) / pps,
            limit: u64::MAX,
        }
    }
}

/// Datagrams from `socket` as `pace` says, until stopped. They go out on a
/// schedule of absolute times, so a late wake-up is made up for and the
/// average rate is exact. `sent` counts those the kernel accepted; the
/// thread returns how many it sent.
pub fn flow(socket: UdpSocket, pace: Pace, sent: Arc<AtomicU64>) -> Background<Result<u64>> {
    Background::spawn(move |stop| send_paced(&socket, pace, &sent, stop))
}

fn send_paced(socket: &UdpSocket, pace: Pace, sent: &AtomicU64, stop: &AtomicBool) -> Result<u64> {
    let Pace {
        to,
        payload,
        every,
        limit,
    } = pace;
    let data = vec![0x5a; payload];
    let start = Instant::now();
    let mut n: u32 = 0;
    while !stop.load(Ordering::SeqCst) && u64::from(n) < limit {
        thread::sleep((start + every * n).saturating_duration_since(Instant::now()));
        let len = socket
            .send_to(&data, to)
            .with_context(|| format!("failed to send to {to}"))?;
        ensure!(len == payload, "sent {len} of {payload} bytes to {to}");
        n += 1;
        sent.fetch_add(1, Ordering::SeqCst);
    }
    Ok(u64::from(n))
}

/// What an [`echo`] server did.
#[derive(Debug, Default)]
pub struct Echoed {
    pub received: AtomicU64,
    /// Replies the kernel accepted, each of which left through the
    /// server's egress hook with the bound address as its source.
    pub replied: AtomicU64,
}

/// Answers every datagram on `socket` with `reply` bytes until stopped. A
/// reply that fails (the bound address is gone) is not counted.
pub fn echo(socket: UdpSocket, reply: usize, seen: Arc<Echoed>) -> Result<Background<Result<()>>> {
    // Short, so the server notices `stop` soon.
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    Ok(Background::spawn(move |stop| {
        let data = vec![0xa5; reply];
        let mut buf = vec![0; 65536];
        while !stop.load(Ordering::SeqCst) {
            let Ok((_, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            seen.received.fetch_add(1, Ordering::SeqCst);
            if socket.send_to(&data, from).is_ok_and(|n| n == reply) {
                seen.replied.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }))
}

/// Flows and echo servers that start one by one and stop together.
#[derive(Default)]
pub struct Traffic {
    threads: Vec<(String, Background<Result<()>>)>,
}

impl Traffic {
    pub fn flow(&mut self, socket: UdpSocket, pace: Pace, sent: Arc<AtomicU64>) {
        let thread =
            Background::spawn(move |stop| send_paced(&socket, pace, &sent, stop).map(drop));
        self.threads.push((format!("flow to {}", pace.to), thread));
    }

    pub fn echo(&mut self, socket: UdpSocket, reply: usize, seen: Arc<Echoed>) -> Result<()> {
        let what = format!("echo on {}", socket.local_addr()?);
        self.threads.push((what, echo(socket, reply, seen)?));
        Ok(())
    }

    /// Stops every thread; the first error any of them hit.
    pub fn finish(mut self) -> Result<()> {
        for (_, thread) in &self.threads {
            thread.signal();
        }
        let mut first = Ok(());
        for (what, thread) in self.threads.drain(..) {
            if let Err(e) = thread.finish()
                && first.is_ok()
            {
                first = Err(e.context(what));
            }
        }
        first
    }
}
