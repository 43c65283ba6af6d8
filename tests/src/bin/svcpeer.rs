//! `svcpeer`: a server or client that runs inside one cgroup, for the
//! per-service tests.
//!
//! ```text
//! svcpeer --cgroup DIR udp-echo ADDR:PORT
//! svcpeer --cgroup DIR udp-send FROM|- TO:PORT COUNT PAYLOAD
//! svcpeer --cgroup DIR tcp-sink ADDR:PORT
//! ```
//!
//! It first moves itself into DIR (writes 0 to DIR/cgroup.procs), so every
//! socket it makes belongs to that cgroup. `udp-echo` binds, prints
//! `ready` and sends every datagram back until stdin closes. `udp-send`
//! binds to FROM (`-`: no bind, the route picks the source), sends COUNT
//! datagrams of PAYLOAD bytes, each after the echo of the one before, and
//! prints its local address. `tcp-sink` listens, prints `ready`, reads one
//! connection to its end and prints the bytes read. Run it under `ip netns
//! exec`; it talks only to the addresses it is given.

use std::{
    io::Read as _,
    net::{SocketAddr, TcpListener, UdpSocket},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, dir, mode, rest @ ..] = args.as_slice() else {
        bail!("usage: see the top of tests/src/bin/svcpeer.rs");
    };
    anyhow::ensure!(flag == "--cgroup", "the first flag is --cgroup DIR");
    std::fs::write(format!("{dir}/cgroup.procs"), "0")
        .with_context(|| format!("failed to join the cgroup {dir}"))?;
    match (mode.as_str(), rest) {
        ("udp-echo", [bind]) => udp_echo(bind.parse()?),
        ("udp-send", [from, to, count, payload]) => {
            udp_send(from, to.parse()?, count.parse()?, payload.parse()?)
        }
        ("tcp-sink", [bind]) => tcp_sink(bind.parse()?),
        _ => bail!("unknown mode or arguments; see the top of tests/src/bin/svcpeer.rs"),
    }
}

fn udp_echo(bind: SocketAddr) -> Result<()> {
    let socket = UdpSocket::bind(bind).with_context(|| format!("bind {bind}"))?;
    // Exit when the test closes our stdin (or dies).
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    println!("ready");
    let mut buf = vec![0; 65536];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        socket.send_to(&buf[..n], from)?;
    }
}

fn udp_send(from: &str, to: SocketAddr, count: u32, payload: usize) -> Result<()> {
    let bind = if from == "-" {
        "0.0.0.0:0".to_owned()
    } else {
        format!("{from}:0")
    };
    let socket = UdpSocket::bind(&bind).with_context(|| format!("bind {bind}"))?;
    // Connected, so that the source the route picks is known before sending.
    socket.connect(to)?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = vec![0; 65536];
    for _ in 0..count {
        socket.send(&vec![0x5a; payload])?;
        let n = socket.recv(&mut buf).context("no echo within 5 s")?;
        anyhow::ensure!(n == payload, "echo of {n} bytes, sent {payload}");
    }
    println!("{}", socket.local_addr()?);
    Ok(())
}

fn tcp_sink(bind: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(bind).with_context(|| format!("listen on {bind}"))?;
    println!("ready");
    let (mut stream, _) = listener.accept()?;
    let mut buf = vec![0; 1 << 16];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf)? {
            0 => break,
            n => total += n as u64,
        }
    }
    drop(stream);
    println!("{total}");
    Ok(())
}
