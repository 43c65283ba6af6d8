//! A TCP bulk transfer, with the sender's own account of what it sent.

use std::{
    io::{Read, Write},
    mem::{offset_of, size_of},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

use super::RECV_TIMEOUT;
use crate::{
    Count, Netns, Veth,
    procnet::{self, Snmp},
};

/// Header bytes of every segment the sender sends once timestamps are
/// negotiated: IPv4 header 20 + TCP header 20 + timestamp option 12 (10,
/// padded with two NOPs). The same holds for the receiver's ACKs only
/// because [`fix_headers`] turns SACK off: a veth that drops under load
/// makes the receiver acknowledge out of order, and every SACK block would
/// add 8 to 12 bytes to an ACK that no counter records.
const SEGMENT_HEADERS: u64 = 20 + 32;
/// The SYN's extra header bytes over [`SEGMENT_HEADERS`]: MSS (4), the
/// timestamp with two NOPs (12), and window scale with a NOP (4) make a
/// 40-byte TCP header, 8 more than the 32 of every later segment.
const SYN_EXTRA: u64 = 8;

/// Sets the TCP options that fix the header sizes [`wire_count`] counts,
/// on both ends of `veth`: they must not depend on the host's defaults, and
/// the SYN-ACK must agree to the same options.
pub fn fix_headers(veth: &Veth) -> Result<()> {
    for ns in [&veth.client.ns, &veth.server.ns] {
        ns.sysctl("net.ipv4.tcp_timestamps", "1")?;
        ns.sysctl("net.ipv4.tcp_sack", "0")?;
        ns.sysctl("net.ipv4.tcp_window_scaling", "1")?;
        ns.sysctl("net.ipv4.tcp_ecn", "0")?;
    }
    Ok(())
}

/// What the receiver's hook counts for a transfer of `segments` wire
/// segments (retransmissions included) carrying `payload_sent` bytes, on a
/// veth set up by [`fix_headers`]: every segment its own headers.
pub fn wire_count(segments: u64, payload_sent: u64) -> Count {
    Count::new(
        segments,
        segments * SEGMENT_HEADERS + SYN_EXTRA + payload_sent,
    )
}

/// What the sender's stack reports about one transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpBulk {
    /// Growth of the sender namespace's `Tcp: OutSegs`: every segment it
    /// sent (SYN, data, pure ACKs, FIN) except retransmissions, each TSO/GSO
    /// aggregate counted as its wire segments.
    pub out_segs: u64,
    /// Growth of `Tcp: RetransSegs`: the retransmissions `out_segs` leaves out.
    pub retrans_segs: u64,
    /// The socket's own `tcpi_segs_out`, retransmissions included.
    pub segs_out: u64,
    /// `tcpi_bytes_sent`: payload bytes put on the wire, retransmitted
    /// payload included, headers not.
    pub payload_sent: u64,
    /// Payload bytes the receiver read.
    pub received: u64,
}

/// Sends `total` bytes over one connection from `sender` to `to` (a
/// listener that this function opens in `receiver`) and closes it both ways.
///
/// Returns once the receiver has seen the sender's very last segment (the
/// ACK of the receiver's FIN), so everything the sender sent has crossed the
/// receiver's ingress hooks.
pub fn tcp_bulk(sender: &Netns, receiver: &Netns, to: SocketAddr, total: u64) -> Result<TcpBulk> {
    tcp_bulk_paced(sender, receiver, to, total, Duration::ZERO)
}

/// [`tcp_bulk`] that sleeps `pause` after every 64 KiB written, so that
/// the transfer lasts long enough for a test to act in the middle of it
/// (kill or upgrade the daemon) at a rate far below what the veth carries.
pub fn tcp_bulk_paced(
    sender: &Netns,
    receiver: &Netns,
    to: SocketAddr,
    total: u64,
    pause: Duration,
) -> Result<TcpBulk> {
    let listener = receiver
        .enter(|| TcpListener::bind(to))?
        .with_context(|| format!("failed to listen on {to} in {}", receiver.name()))?;
    // Non-blocking accept with a deadline: if connecting fails, this
    // thread must not wait forever.
    listener.set_nonblocking(true)?;
    let reader = thread::spawn(move || read_all(&listener));
    let sent = send_bulk(sender, to, total, pause)?;
    let received = reader.join().expect("the reader does not panic")?;
    wait_for_last_ack(receiver)?;
    Ok(TcpBulk { received, ..sent })
}

/// The sending half of [`tcp_bulk_paced`], to a listener someone else runs
/// (another process, in a cgroup of its own): returns once the receiver
/// has closed and the sender has acknowledged that. `received` is left 0
/// for the caller, who knows what the receiver read.
pub fn send_bulk(sender: &Netns, to: SocketAddr, total: u64, pause: Duration) -> Result<TcpBulk> {
    let before = Snmp::read(sender)?;
    let mut stream = sender
        .enter(|| TcpStream::connect_timeout(&to, RECV_TIMEOUT))?
        .with_context(|| format!("failed to connect to {to} from {}", sender.name()))?;
    let chunk = vec![0x5a; 1 << 16];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n])?;
        left -= n as u64;
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    stream.shutdown(Shutdown::Write)?;
    // The receiver closes once it has read everything; the sender's stack
    // acknowledges that FIN before this read returns end-of-file.
    stream.set_read_timeout(Some(RECV_TIMEOUT))?;
    let extra = stream
        .read(&mut [0; 1])
        .context("waiting for the receiver to close")?;
    ensure!(extra == 0, "the receiver sent data back");
    let info = tcp_info(&stream)?;
    let after = Snmp::read(sender)?;
    drop(stream);
    Ok(TcpBulk {
        out_segs: after.delta(&before, "Tcp", "OutSegs")?,
        retrans_segs: after.delta(&before, "Tcp", "RetransSegs")?,
        segs_out: u64::from(info.segs_out),
        payload_sent: info.bytes_sent,
        received: 0,
    })
}

fn read_all(listener: &TcpListener) -> Result<u64> {
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e).context("no connection to accept"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(RECV_TIMEOUT))?;
    let mut buf = vec![0; 1 << 16];
    let mut received = 0u64;
    loop {
        match stream.read(&mut buf).context("reading the bulk transfer")? {
            0 => return Ok(received),
            n => received += n as u64,
        }
    }
}

/// Waits until `ns` has no TCP socket other than listeners and TIME_WAIT
/// ones: the receiver's socket leaves LAST_ACK only when the sender's final
/// ACK arrives.
pub fn wait_for_last_ack(ns: &Netns) -> Result<()> {
    const TIME_WAIT: u8 = 0x06;
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let states = procnet::tcp_states(ns)?;
        if states
            .iter()
            .all(|&s| s == procnet::TCP_LISTEN || s == TIME_WAIT)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "TCP sockets in {} still open: states {states:02x?}",
                ns.name()
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The head of the kernel's `struct tcp_info` (include/uapi/linux/tcp.h),
/// up to the fields read here. The kernel copies as much as the caller asks
/// for, so a prefix is a valid buffer. libc's glibc flavour stops short of
/// these fields.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    state_and_flags: [u8; 8],
    /// `tcpi_rto` up to `tcpi_total_retrans`.
    timers_and_metrics: [u32; 24],
    /// `tcpi_pacing_rate`, `tcpi_max_pacing_rate`, `tcpi_bytes_acked`,
    /// `tcpi_bytes_received`.
    rates_and_totals: [u64; 4],
    segs_out: u32,
    /// `tcpi_segs_in` up to `tcpi_data_segs_out`.
    seg_counts: [u32; 5],
    /// `tcpi_delivery_rate`, `tcpi_busy_time`, `tcpi_rwnd_limited`,
    /// `tcpi_sndbuf_limited`.
    times: [u64; 4],
    /// `tcpi_delivered`, `tcpi_delivered_ce`.
    delivered: [u32; 2],
    bytes_sent: u64,
}

// Offsets as compiled from the uapi header.
const _: () = assert!(offset_of!(TcpInfo, segs_out) == 136);
const _: () = assert!(offset_of!(TcpInfo, bytes_sent) == 200);
const _: () = assert!(size_of::<TcpInfo>() == 208);

fn tcp_info(stream: &TcpStream) -> Result<TcpInfo> {
    let mut info = TcpInfo::default();
    let mut len = size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: a buffer of `len` bytes that any bytes are valid for.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getsockopt(TCP_INFO)");
    }
    ensure!(
        len as usize == size_of::<TcpInfo>(),
        "the kernel returned only {len} bytes of tcp_info (needs 4.19+ for tcpi_bytes_sent)"
    );
    Ok(info)
}
