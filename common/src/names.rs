//! Names that both sides must agree on. The kernel object exports maps and
//! programs under these names; user space finds and pins them by the same
//! strings, so they are spelled here once.

/// Per-CPU hash of [`crate::AddrKey`] to [`crate::Counters`].
pub const ADDRESSES: &str = "ADDRESSES";
/// Per-CPU hash of [`crate::OtherKey`] to [`crate::Counters`]: the `non_ip`
/// and `overflow` buckets.
pub const OTHER: &str = "OTHER";

/// Per-CPU hash of [`crate::ServiceKey`] to [`crate::Counters`]: what the
/// sockets of each cgroup received and sent, per local address.
pub const SERVICES: &str = "SERVICES";
/// One-entry array holding the network namespace cookie whose traffic the
/// service programs count (cgroup programs see every namespace).
pub const SERVICE_NETNS: &str = "SERVICE_NETNS";
/// Entries in [`SERVICES`]: (cgroup, interface, direction, address).
pub const SERVICE_CAPACITY: u32 = 16_384;

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

/// Default number of (interface, direction, address) entries in
/// [`ADDRESSES`]. User space overrides it with `--map-capacity`.
pub const DEFAULT_ADDRESS_CAPACITY: u32 = 16_384;
/// Entries in [`OTHER`]: two kinds times two directions per interface, for
/// up to 1024 interfaces. User space creates the entries of every interface
/// it attaches to, so the kernel side never has to insert into a full map.
pub const OTHER_CAPACITY: u32 = 4096;

/// How often, at most, the kernel side logs that [`ADDRESSES`] is full.
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
