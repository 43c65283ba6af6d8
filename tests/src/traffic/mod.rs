//! Traffic between lab namespaces, each helper returning only once what it
//! sent has been seen by the receiving socket, so the hooks in between have
//! counted it by then and a dump is complete without any waiting.

mod raw;
mod tcp;
mod udp;

use std::time::Duration;

pub use raw::PacketSocket;
pub use tcp::{
    TcpBulk, fix_headers, send_bulk, tcp_bulk, tcp_bulk_paced, wait_for_last_ack, wire_count,
};
pub use udp::{exchange, one_way, udp_socket};

/// How long a socket waits for what its peer sent over a veth. Only a lost
/// packet, which a veth never drops, comes near it.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
