//! `aliasstat top`: which address, owned by whom, is taking the traffic
//! right now, read from a running daemon's HTTP API.
//!
//! `state` holds everything top knows and decides (pure, tested without a
//! terminal), `peers` the drill-down into one address's peers and
//! `services` its other pane, the address's services, `render`
//! draws it, `client` talks to the daemon, and
//! `report` prints `--once`. This module runs the loop: a sampling thread
//! reads the daemon every interval, a key thread reads the terminal, and
//! the main thread applies both to the state and redraws.

pub mod client;
pub mod peers;
pub mod render;
pub mod report;
pub mod services;
pub mod state;

use std::{
    error::Error as StdError,
    io::{self, IsTerminal as _, Write as _},
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread,
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{self, Event as TermEvent, KeyEvent, KeyEventKind};
use tokio::{
    runtime::Runtime,
    signal::unix::{Signal, SignalKind, signal},
    time::MissedTickBehavior,
};

use self::{
    client::{Attached, Client, ClientError},
    peers::{Pane, PeerSample},
    services::ServicesRead,
    state::{Flow, Sample, Source, Top, View},
};

/// Where `aliasstat run` listens by default (`http::DEFAULT_LISTEN`), seen
/// from the same host.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9864";

/// Faster than this, sampling costs the daemon more than it tells anyone.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the header's attachments are re-read: they change rarely.
const STATUS_EVERY: Duration = Duration::from_secs(10);

pub struct Options {
    pub url: String,
    /// Credentials and CA for the daemon's web config.
    pub access: client::Access,
    pub interval: Duration,
    pub once: bool,
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the terminal failed; `aliasstat top --once` works without one")]
    Terminal(#[source] io::Error),
    #[error("failed to start the async runtime")]
    Runtime(#[source] io::Error),
    #[error("failed to install the {signal} handler")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("failed to write the report")]
    Output(#[source] io::Error),
}

#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not an interval such as 1s, 500ms or 2.5s, from 100ms to 1h")]
pub struct IntervalError {
    text: String,
}

/// `1s`, `500ms`, `2.5s`, `1m`, or plain seconds.
pub fn parse_interval(text: &str) -> Result<Duration, IntervalError> {
    parse_duration(text)
        .filter(|d| (MIN_INTERVAL..=MAX_INTERVAL).contains(d))
        .ok_or_else(|| IntervalError {
            text: text.to_owned(),
        })
}

/// `500ms`, `2.5s`, `10m`, `6h`, `30d`, or plain seconds; `None` for
/// anything else or a negative time.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (number, scale) = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3600.0),
        ("d", 86_400.0),
    ]
    .into_iter()
    .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n, scale)))
    .unwrap_or((t, 1.0));
    number
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
}

pub fn run(opts: &Options) -> Result<(), TopError> {
    let client = Client::new(&opts.url, &opts.access)?;
    if opts.once || opts.json || !io::stdout().is_terminal() {
        once(&client, opts)
    } else {
        interactive(client, opts.interval)
    }
}

fn runtime() -> Result<Runtime, TopError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TopError::Runtime)
}

/// Two samples one interval apart, printed once.
fn once(client: &Client, opts: &Options) -> Result<(), TopError> {
    let rt = runtime()?;
    let first = Sample {
        entries: rt.block_on(client.aliases())?,
        at: Instant::now(),
    };
    thread::sleep(opts.interval);
    let second = Sample {
        entries: rt.block_on(client.aliases())?,
        at: Instant::now(),
    };
    let lines = state::lines(Some(&first), &second);
    let shown = View::default().apply(&lines);
    let text = if opts.json {
        report::json(&shown, second.at - first.at) + "\n"
    } else {
        report::table(&shown)
    };
    match io::stdout().lock().write_all(text.as_bytes()) {
        // `aliasstat top --once | head` is a reader that has had enough.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(TopError::Output),
    }
}

/// The address whose peers or services the drill-down shows, shared with
/// the sampler.
type Watching = Arc<Mutex<Option<(IpAddr, Pane)>>>;

/// What the main loop waits for.
enum Event {
    Key(KeyEvent),
    /// The terminal changed size; a redraw fits the new one.
    Resize,
    Sample(Result<Sample, String>, Option<Vec<Attached>>),
    /// The peers of the address the drill-down watched when they were read.
    Peers(IpAddr, Result<PeerSample, String>),
    /// The services of the address the drill-down watched when read.
    Services(IpAddr, ServicesRead),
    /// SIGINT (from kill: in raw mode Ctrl-C is a key), SIGTERM or
    /// SIGHUP: leave like `q` does, terminal restored.
    Quit,
    /// Reading the terminal failed.
    Input(io::Error),
}

/// Leaves raw mode and the alternate screen however the loop ends;
/// ratatui's panic hook does the same before a panic message is printed.
struct RestoreTerminal;

impl Drop for RestoreTerminal {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn interactive(client: Client, interval: Duration) -> Result<(), TopError> {
    let source = Source {
        host: daemon_host(client.host(), local_host_name),
        url: client.url(),
        interval,
    };
    let rt = runtime()?;
    let signals = signals(&rt)?;
    let (tx, rx) = mpsc::channel();
    // The drill-down's address, which the sampler reads every interval.
    let watching: Watching = Arc::default();
    {
        let tx = tx.clone();
        let watching = watching.clone();
        thread::spawn(move || rt.block_on(sample(client, interval, signals, watching, tx)));
    }

    let _restore = RestoreTerminal;
    let mut terminal = ratatui::try_init().map_err(TopError::Terminal)?;
    thread::spawn(move || read_keys(&tx));

    let mut top = Top::new(source);
    loop {
        terminal
            .draw(|frame| render::draw(frame, &top))
            .map_err(TopError::Terminal)?;
        let Ok(first) = rx.recv() else {
            return Ok(());
        };
        // Whatever else is queued (held-down keys, a sample that arrived
        // with them) is applied before the next redraw.
        for event in std::iter::once(first).chain(rx.try_iter()) {
            if apply(&mut top, event)? == Flow::Quit {
                return Ok(());
            }
        }
        *watching.lock().unwrap_or_else(PoisonError::into_inner) = top.watching();
    }
}

/// The signals that end top, registered on the sampling runtime.
fn signals(rt: &Runtime) -> Result<[Signal; 3], TopError> {
    let _context = rt.enter();
    let of = |kind, name| {
        signal(kind).map_err(|source| TopError::Signal {
            signal: name,
            source,
        })
    };
    Ok([
        of(SignalKind::interrupt(), "SIGINT")?,
        of(SignalKind::terminate(), "SIGTERM")?,
        of(SignalKind::hangup(), "SIGHUP")?,
    ])
}

fn apply(top: &mut Top, event: Event) -> Result<Flow, TopError> {
    match event {
        Event::Key(key) => return Ok(top.on_key(key)),
        Event::Resize => {}
        Event::Sample(sample, attachments) => {
            top.on_sample(sample);
            if let Some(a) = attachments {
                top.on_attachments(a);
            }
        }
        Event::Peers(address, sample) => {
            if top.watching() == Some((address, Pane::Peers)) {
                top.on_peers(sample);
            }
        }
        Event::Services(address, read) => {
            if top.watching() == Some((address, Pane::Services)) {
                top.on_services(read);
            }
        }
        Event::Quit => return Ok(Flow::Quit),
        Event::Input(e) => return Err(TopError::Terminal(e)),
    }
    Ok(Flow::Continue)
}

/// Reads the daemon every `interval` until the main loop is gone or a
/// signal says to quit. Failures are reported and retried at the same
/// pace: the daemon may be restarting.
async fn sample(
    client: Client,
    interval: Duration,
    mut signals: [Signal; 3],
    watching: Watching,
    tx: mpsc::Sender<Event>,
) {
    let mut ticks = tokio::time::interval(interval);
    // After a slow answer, keep the interval between samples rather than
    // firing the missed ones back to back.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut metrics_read: Option<Instant> = None;
    loop {
        let [int, term, hup] = &mut signals;
        tokio::select! {
            _ = ticks.tick() => {}
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = hup.recv() => break,
        }
        let sample = match client.aliases().await {
            Ok(entries) => Ok(Sample {
                entries,
                at: Instant::now(),
            }),
            Err(e) => {
                // Re-read the attachments as soon as it answers again: the
                // daemon may have come back on other interfaces.
                metrics_read = None;
                Err(chain(&e))
            }
        };
        let due = metrics_read.is_none_or(|at| at.elapsed() >= STATUS_EVERY);
        let attachments = if sample.is_ok() && due {
            // A failure here leaves the header as it was; the rows matter.
            let read = client.attachments().await.ok();
            if read.is_some() {
                metrics_read = Some(Instant::now());
            }
            read
        } else {
            None
        };
        if tx.send(Event::Sample(sample, attachments)).is_err() {
            return;
        }
        let watched = *watching.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(watched) = watched
            && tx.send(drill_down(&client, watched).await).is_err()
        {
            return;
        }
    }
    let _ = tx.send(Event::Quit);
}

/// One reading of what the drill-down shows.
async fn drill_down(client: &Client, (address, pane): (IpAddr, Pane)) -> Event {
    match pane {
        Pane::Peers => {
            let peers = client
                .peers(Some(&address.to_string()))
                .await
                .map(|list| PeerSample {
                    list,
                    at: Instant::now(),
                })
                .map_err(|e| chain(&e));
            Event::Peers(address, peers)
        }
        Pane::Services => {
            let answer = client.services().await;
            Event::Services(address, ServicesRead::of(address, Instant::now(), answer))
        }
    }
}

fn read_keys(tx: &mpsc::Sender<Event>) {
    loop {
        let event = match event::read() {
            // Key releases and repeats (reported by some terminals) are
            // not presses.
            Ok(TermEvent::Key(key)) if key.kind == KeyEventKind::Press => Event::Key(key),
            Ok(TermEvent::Resize(..)) => Event::Resize,
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Event::Input(e));
                return;
            }
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// `error: cause: cause`, on one line for the status bar.
pub(crate) fn chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// The name to show for the daemon's host: for a loopback URL the daemon
/// runs here, so this host's name; otherwise the URL's host.
fn daemon_host(url_host: &str, local: impl FnOnce() -> String) -> String {
    let bare = url_host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
    if loopback {
        local()
    } else {
        url_host.to_owned()
    }
}

fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        let ms = Duration::from_millis;
        let cases = [
            ("1s", Some(ms(1000))),
            ("500ms", Some(ms(500))),
            ("2.5s", Some(ms(2500))),
            ("2", Some(ms(2000))),
            ("1m", Some(ms(60_000))),
            (" 1 s ", Some(ms(1000))),
            ("0.1s", Some(ms(100))),
            ("50ms", None),
            ("0", None),
            ("-1s", None),
            ("2h", None),
            ("fast", None),
            ("NaNs", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_interval(text).ok(), want, "{text}");
        }
    }

    #[test]
    fn default_url_is_the_default_listen_port() {
        let port = crate::serve::http::DEFAULT_LISTEN
            .rsplit(':')
            .next()
            .unwrap();
        assert!(DEFAULT_URL.ends_with(&format!(":{port}")));
    }

    #[test]
    fn host_shown_in_the_header() {
        let here = || "web-01".to_owned();
        assert_eq!(daemon_host("127.0.0.1", here), "web-01");
        assert_eq!(daemon_host("127.1.2.3", here), "web-01");
        assert_eq!(daemon_host("[::1]", here), "web-01");
        assert_eq!(daemon_host("LOCALHOST", here), "web-01");
        assert_eq!(daemon_host("db-02.example", here), "db-02.example");
        assert_eq!(daemon_host("[2001:db8::1]", here), "[2001:db8::1]");
    }

    #[test]
    fn error_chain_on_one_line() {
        let e = ClientError::Connect {
            url: "http://127.0.0.1:1/api/v1/aliases".into(),
            source: io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused"),
        };
        assert_eq!(
            chain(&e),
            "cannot connect to http://127.0.0.1:1/api/v1/aliases (start `aliasstat run`, or \
             point --url at its --listen): Connection refused"
        );
    }
}
