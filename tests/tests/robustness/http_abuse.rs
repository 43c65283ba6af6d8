//! Misbehaving HTTP clients: many scrapers at once, slowloris connections
//! that never finish their request head, and a megabyte of headers. The
//! daemon keeps serving through all of them and sheds the bad ones on its
//! own.

use std::{
    io::{ErrorKind, Read, Write},
    net::{IpAddr, SocketAddr, TcpStream},
    sync::Barrier,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use lab::{
    BpfDir, Daemon, Veth,
    daemon::{Config, Launch},
    link::Ipv6,
    stress::{self, Reply},
};

use crate::{Outcome, check_eq};

const LISTEN: &str = "127.0.0.1:9864";
/// `--header-timeout`, short to keep the test short.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const SCRAPERS: usize = 200;
const SLOWLORIS: usize = 100;
/// How long past the header timeout a slowloris connection may stay open
/// before the test calls it a failure: a bound for a loaded machine, not
/// a timing claim.
const CLOSE_MARGIN: Duration = Duration::from_secs(20);

struct Server {
    veth: Veth,
    _pins: BpfDir,
    daemon: Daemon,
    listen: SocketAddr,
}

impl Server {
    fn start() -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        veth.server.add_addr(IpAddr::from([10, 98, 0, 2]), 24)?;
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        let pins = BpfDir::new("srv")?;
        let daemon = Daemon::start_with(
            &Config::new(&veth.server.ns, &pins, &veth.server.ifname),
            &Launch {
                args: vec![
                    "--listen".into(),
                    LISTEN.into(),
                    "--header-timeout".into(),
                    HEADER_TIMEOUT.as_secs().to_string().into(),
                ],
                ..Launch::default()
            },
        )?;
        Ok(Self {
            veth,
            _pins: pins,
            daemon,
            listen: LISTEN.parse()?,
        })
    }

    fn scrape(&self) -> Result<Reply> {
        let reply = stress::http_get(&self.veth.server.ns, self.listen, "/metrics")?;
        ensure!(reply.status == 200, "/metrics answered {}", reply.status);
        ensure!(
            reply.body.contains("aliasstat_build_info"),
            "/metrics without aliasstat_build_info: {}",
            reply.body
        );
        Ok(reply)
    }

    fn connect(&self) -> Result<TcpStream> {
        stress::connect(&self.veth.server.ns, self.listen)
    }

    fn stop(mut self) -> Result<()> {
        ensure!(
            self.daemon.exited()?.is_none(),
            "the daemon died:\n{}",
            self.daemon.log()
        );
        self.daemon.stop()
    }
}

pub fn concurrent_scrapers() -> Result<Outcome> {
    let server = Server::start()?;
    let start = Barrier::new(SCRAPERS);
    let results: Vec<Result<usize>> = thread::scope(|s| {
        let handles: Vec<_> = (0..SCRAPERS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    server.scrape().map(|r| r.body.len())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scraper does not panic"))
            .collect()
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}")))
        .collect();
    println!(
        "  {SCRAPERS} concurrent scrapes: {} answered 200, {} failed",
        SCRAPERS - failed.len(),
        failed.len()
    );
    ensure!(failed.is_empty(), "failed scrapes: {failed:#?}");
    server.stop()?;
    Ok(Outcome::Passed)
}

pub fn slowloris() -> Result<Outcome> {
    let server = Server::start()?;
    let mut slow = Vec::with_capacity(SLOWLORIS);
    for _ in 0..SLOWLORIS {
        // Taken before connecting: the server's timer cannot start earlier.
        let opened = Instant::now();
        let mut stream = server.connect()?;
        // A request line and one header, and then nothing, ever.
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n")?;
        slow.push((opened, stream));
    }
    let all_open = Instant::now();
    let reply = server
        .scrape()
        .context("a scrape during the slowloris connections")?;
    println!(
        "  a scrape with {SLOWLORIS} slowloris connections open: 200, {} bytes",
        reply.body.len()
    );
    // Still open at that point, or the scrape did not overlap them.
    let open = slow.iter().filter(|(_, s)| still_open(s)).count();
    println!("  slowloris connections still open after the scrape: {open}");

    let deadline = all_open + HEADER_TIMEOUT + CLOSE_MARGIN;
    let mut answered = 0;
    // Lifetimes as seen from here: never shorter than the real ones.
    let (mut shortest, mut longest) = (Duration::MAX, Duration::ZERO);
    for (i, (opened, stream)) in slow.iter_mut().enumerate() {
        let got = read_until_closed(stream, deadline)
            .with_context(|| format!("slowloris connection {i}"))?;
        if !got.is_empty() {
            // hyper may answer 408 before closing; anything else is wrong.
            let reply = stress::parse_reply(&got)?;
            check_eq("status sent to a slowloris connection", &408, &reply.status)?;
            answered += 1;
        }
        let lived = opened.elapsed();
        shortest = shortest.min(lived);
        longest = longest.max(lived);
    }
    println!(
        "  all {SLOWLORIS} closed by the server (with a 408: {answered}), each after \
         {shortest:?} to {longest:?}; header timeout {HEADER_TIMEOUT:?}"
    );
    // Closed by the header timeout, not by something sooner; the first
    // ones are read a little late, so this bounds from one side only.
    ensure!(
        shortest >= HEADER_TIMEOUT,
        "a connection was closed before the header timeout, after {shortest:?}"
    );
    server
        .scrape()
        .context("a scrape after the slowloris connections")?;
    server.stop()?;
    Ok(Outcome::Passed)
}

pub fn huge_header() -> Result<Outcome> {
    let server = Server::start()?;
    let mut stream = server.connect()?;
    let mut request = b"GET /metrics HTTP/1.1\r\nHost: big\r\nX-Big: ".to_vec();
    request.resize(request.len() + (1 << 20), b'a');
    request.extend_from_slice(b"\r\n\r\n");
    // The server may close mid-way: a write error is a valid outcome, the
    // answer (if any) is read below either way.
    let mut writer = stream.try_clone()?;
    let sender = thread::spawn(move || writer.write_all(&request).map_err(|e| e.kind()));
    let got = read_until_closed(&mut stream, Instant::now() + CLOSE_MARGIN)?;
    let wrote = sender.join().expect("the writer does not panic");
    let outcome = if got.is_empty() {
        "closed without an answer".to_owned()
    } else {
        let reply = stress::parse_reply(&got)?;
        check_eq("status for a 1 MiB header", &431, &reply.status)?;
        "431".to_owned()
    };
    println!("  a 1 MiB header: {outcome}; the client's write: {wrote:?}");
    server.scrape().context("a scrape after the 1 MiB header")?;
    server.stop()?;
    Ok(Outcome::Passed)
}

/// Whether the server has neither closed nor reset `stream`.
fn still_open(stream: &TcpStream) -> bool {
    let mut buf = [0u8; 1];
    let _ = stream.set_nonblocking(true);
    let open = matches!(stream.peek(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    let _ = stream.set_nonblocking(false);
    open
}

/// Reads until the server closes (end of file) or resets the connection,
/// returning what it sent; fails if it is still open at `deadline`.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!(
                "still open at the deadline, after receiving {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        stream.set_read_timeout(Some(left.min(Duration::from_secs(1))))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(got),
            Err(e) => return Err(e).context("reading"),
        }
    }
}
