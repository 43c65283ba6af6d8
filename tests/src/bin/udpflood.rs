//! `udpflood`: sends UDP as fast as one core can, for `cargo xtask bench`.
//!
//! ```text
//! udpflood --from ADDR --to ADDR:PORT [--seconds S] [--cpu N]
//!          [--payload BYTES] [--batch N]
//! ```
//!
//! Run it inside a lab namespace (`ip netns exec`): it sends only to the
//! address given, from a socket bound to `--from`. Datagrams go out in
//! `sendmmsg(2)` batches from one connected socket, so the route and the
//! neighbour are looked up once and the per-packet cost is the stack's, not
//! the system call's. The thread is pinned to `--cpu` (`sched_setaffinity`),
//! so on a veth the receive side, which runs in the sender's softirq,
//! shares that core and a costlier receive path shows as fewer packets.
//!
//! Prints one JSON object: `{"sent":N,"seconds":S}`.

use std::{
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

struct Args {
    from: SocketAddr,
    to: SocketAddr,
    seconds: f64,
    cpu: Option<usize>,
    payload: usize,
    batch: usize,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let mut from = None;
    let mut to = None;
    let mut parsed = Args {
        from: SocketAddr::from(([0, 0, 0, 0], 0)),
        to: SocketAddr::from(([0, 0, 0, 0], 0)),
        seconds: 2.0,
        cpu: None,
        payload: 18,
        batch: 64,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--from" => from = Some(SocketAddr::new(value.parse().with_context(bad)?, 0)),
            "--to" => to = Some(value.parse().with_context(bad)?),
            "--seconds" => parsed.seconds = value.parse().with_context(bad)?,
            "--cpu" => parsed.cpu = Some(value.parse().with_context(bad)?),
            "--payload" => parsed.payload = value.parse().with_context(bad)?,
            "--batch" => parsed.batch = value.parse().with_context(bad)?,
            _ => bail!("unknown flag {flag}; see the top of tests/src/bin/udpflood.rs"),
        }
    }
    parsed.from = from.context("--from ADDR is required")?;
    parsed.to = to.context("--to ADDR:PORT is required")?;
    if !(parsed.seconds > 0.0 && parsed.seconds <= 60.0) {
        bail!("--seconds must be in (0, 60]: a flood is bounded");
    }
    if parsed.batch == 0 || parsed.batch > 1024 {
        bail!("--batch must be in 1..=1024 (UIO_MAXIOV)");
    }
    Ok(parsed)
}

fn main() -> Result<()> {
    let args = parse(std::env::args().skip(1))?;
    if let Some(cpu) = args.cpu {
        lab::pin_to(cpu).context("--cpu")?;
    }
    let socket =
        UdpSocket::bind(args.from).with_context(|| format!("failed to bind UDP {}", args.from))?;
    socket
        .connect(args.to)
        .with_context(|| format!("failed to connect UDP to {}", args.to))?;

    let payload = vec![0xa5u8; args.payload];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // Every message of a batch is the same datagram on the connected socket.
    let mut msgs: Vec<libc::mmsghdr> = (0..args.batch)
        .map(|_| {
            // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = &raw mut iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();

    let duration = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut sent: u64 = 0;
    let mut elapsed = Duration::ZERO;
    while elapsed < duration {
        // SAFETY: `msgs` holds `batch` valid headers whose iovec and
        // payload outlive the call.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                0,
            )
        };
        if n >= 0 {
            sent += n as u64;
        } else {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                // A full queue is the flood doing its job; a refusal is an
                // ICMP error for an earlier datagram. Keep sending.
                Some(libc::ENOBUFS | libc::EAGAIN | libc::ECONNREFUSED) => {}
                _ => return Err(e).context("sendmmsg failed"),
            }
        }
        elapsed = started.elapsed();
    }
    println!(
        "{}",
        serde_json::json!({ "sent": sent, "seconds": elapsed.as_secs_f64() })
    );
    Ok(())
}
