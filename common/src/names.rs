//! Names that both sides must agree on. The kernel object exports maps and
//! programs under these names; user space finds and pins them by the same
//! strings, so they are spelled here once.

/// Per-CPU hash of [`crate::Addr4Key`] to [`crate::Counters`], the IPv4
/// addresses (layout v2 on).
pub const ADDRESSES_V4: &str = "ADDRESSES_V4";
/// Per-CPU hash of [`crate::Addr6Key`] to [`crate::Counters`], the IPv6
/// addresses (layout v2 on).
pub const ADDRESSES_V6: &str = "ADDRESSES_V6";
/// Layout v1's per-CPU hash of [`crate::AddrKey`] to [`crate::Counters`],
/// both families: only read, as counts an upgrade carried over.
pub const ADDRESSES: &str = "ADDRESSES";
/// Per-CPU hash of [`crate::OtherKey`] to [`crate::Counters`]: the `non_ip`
/// and `overflow` buckets.
pub const OTHER: &str = "OTHER";

/// Hash of [`crate::peer::PeerKey`] to [`crate::peer::PeerCounts`]: who
/// each local IPv6 address talks with. Not per-CPU: updated with atomic
/// adds. Before [`PEERS_V4`] it held both families, so on a host upgraded
/// in place it may still hold IPv4 pairs, which no program adds to.
pub const PEERS: &str = "PEERS";
/// Hash of [`crate::peer::Peer4Key`] to [`crate::peer::PeerCounts`]: who
/// each local IPv4 address talks with.
pub const PEERS_V4: &str = "PEERS_V4";
/// Hash of [`crate::peer::PeerMissKey`] to [`crate::Counters`]: packets of
/// each local address whose pair found [`PEERS`] full.
pub const PEERS_MISSED: &str = "PEERS_MISSED";

/// Load-time global (`u8`): 0 turns peer tracking off, and the verifier
/// then prunes it from the programs.
pub const PEERS_ON: &str = "PEERS_ON";
/// Load-time globals (`[u8; 16]`): the mask applied to a remote IPv4 (first
/// four bytes) or IPv6 address before it is used as a peer.
pub const PEER_V4_MASK: &str = "PEER_V4_MASK";
pub const PEER_V6_MASK: &str = "PEER_V6_MASK";
/// Load-time globals (`u8`): the prefix lengths of those masks, stored in
/// every [`crate::peer::PeerKey`].
pub const PEER_V4_PREFIX: &str = "PEER_V4_PREFIX";
pub const PEER_V6_PREFIX: &str = "PEER_V6_PREFIX";
/// Per-CPU hashes of [`crate::Service4Key`] and [`crate::Service6Key`] to
/// [`crate::Counters`]: what the sockets of each cgroup received and sent,
/// per local IPv4 and IPv6 address.
pub const SERVICES_V4: &str = "SERVICES_V4";
pub const SERVICES_V6: &str = "SERVICES_V6";
/// Load-time global (`u64`): the cookie of the network namespace whose
/// traffic the service programs count (cgroup programs see every
/// namespace); 0, which no namespace has, counts none.
pub const SERVICE_NETNS: &str = "SERVICE_NETNS";
/// Entries in each of [`SERVICES_V4`] and [`SERVICES_V6`]: (cgroup,
/// interface, direction, address). 16,384 in all, as the one map of both
/// families had: the values are per CPU, so every entry costs 16 bytes
/// times the CPUs (16 MiB a family on 128 CPUs), and a host has far fewer
/// (cgroup, address) pairs with traffic than addresses.
pub const SERVICE_CAPACITY: u32 = 8_192;

/// cgroup_skb program counting what a socket of a cgroup receives, by
/// destination address.
pub const CGROUP_INGRESS: &str = "aliasstat_cgroup_ingress";
/// cgroup_skb program counting what a socket of a cgroup sends, by source
/// address.
pub const CGROUP_EGRESS: &str = "aliasstat_cgroup_egress";

/// TC classifier counting by destination address on ingress.
pub const TC_INGRESS: &str = "aliasstat_tc_ingress";
/// TC classifier counting by source address on egress.
pub const TC_EGRESS: &str = "aliasstat_tc_egress";
/// XDP program counting by destination address on ingress.
pub const XDP_INGRESS: &str = "aliasstat_xdp_ingress";

/// Default number of (interface, direction, address) entries in each of
/// [`ADDRESSES_V4`] and [`ADDRESSES_V6`]. User space overrides it with
/// `--map-capacity`. 24,576 addresses in all, where layout v1 had 16,384
/// for both families together; more would take the default past 64 MiB of
/// kernel memory on a 128-CPU host (see `bpf/memory.rs`).
pub const DEFAULT_ADDRESS_CAPACITY: u32 = 12_288;
/// Entries in [`OTHER`]: two kinds times two directions per interface, for
/// up to 1024 interfaces. User space creates the entries of every interface
/// it attaches to, so the kernel side never has to insert into a full map.
pub const OTHER_CAPACITY: u32 = 4096;

/// Default entries of each of [`PEERS_V4`] and [`PEERS`]
/// (`--peer-capacity`): 98,304 pairs per family take about 27 MiB of
/// kernel memory in all, whatever the CPU count (see `bpf/memory.rs`).
pub const DEFAULT_PEER_CAPACITY: u32 = 98_304;
/// Default remote prefix lengths (`--peer-prefix-v4`, `--peer-prefix-v6`):
/// an IPv4 client is one address, an IPv6 client its /64, which groups the
/// privacy addresses (RFC 8981) a client rotates through every day.
pub const DEFAULT_PEER_V4_PREFIX: u8 = 32;
pub const DEFAULT_PEER_V6_PREFIX: u8 = 64;

/// How often, at most, the kernel side logs that an address map is full.
pub const FULL_LOG_INTERVAL_NS: u64 = 60 * 1_000_000_000;

// Benchmark-only programs (`cargo xtask bench`). They live in the same
// object so that they are built by the same compiler from the same parser,
// but the daemon never loads or attaches them.

/// Returns at once, as TC: the cost of the hook and the test harness alone.
pub const BENCH_EMPTY_TC: &str = "bench_empty_tc";
/// Returns at once, as XDP.
pub const BENCH_EMPTY_XDP: &str = "bench_empty_xdp";
/// Only moves the frame to its next benchmark key (TC): the key-generation
/// cost that is subtracted from [`BENCH_KEYED_TC`].
pub const BENCH_REKEY_TC: &str = "bench_rekey_tc";
/// Only moves the frame to its next benchmark key (XDP).
pub const BENCH_REKEY_XDP: &str = "bench_rekey_xdp";
/// Counts like [`TC_INGRESS`], then moves the frame to its next key, so
/// that repeated runs on one frame cycle through many addresses.
pub const BENCH_KEYED_TC: &str = "bench_keyed_tc";
/// Counts like [`XDP_INGRESS`], then moves the frame to its next key.
pub const BENCH_KEYED_XDP: &str = "bench_keyed_xdp";
/// Returns at once, as cgroup_skb: the floor that [`CGROUP_INGRESS`]'s
/// cost per delivered packet is measured against.
pub const BENCH_EMPTY_CGROUP: &str = "bench_empty_cgroup";
