//! The per-bucket families: traffic without a per-address series, summed
//! per interface and direction.

use std::collections::BTreeMap;

use bytes::BytesMut;
use common::{Counters, Direction, OtherKind};

use super::{
    family::{Family, Labels},
    labels::LabelCache,
};
use crate::{bpf::counters::OtherCount, foreign::Split};

const BUCKET: Labels<2> = Labels(["direction", "interface"]);

pub static NON_IP_PACKETS: Family<2> = Family::counter(
    "aliasstat_non_ip_packets_total",
    "Frames that are not well-formed IPv4 or IPv6 (ARP, LLDP, malformed IP), per interface and direction.",
    BUCKET,
);

pub static NON_IP_BYTES: Family<2> = Family::counter(
    "aliasstat_non_ip_bytes_total",
    "Frame bytes (link-layer header included) of non-IP frames, per interface and direction.",
    BUCKET,
);

pub static OVERFLOW_PACKETS: Family<2> = Family::counter(
    "aliasstat_overflow_packets_total",
    "IP packets counted here because the address map was full when their address was first seen. Nonzero means --map-capacity is too small.",
    BUCKET,
);

pub static OVERFLOW_BYTES: Family<2> = Family::counter(
    "aliasstat_overflow_bytes_total",
    "IP-layer bytes of packets counted in the overflow bucket.",
    BUCKET,
);

pub static FOREIGN_OTHER_PACKETS: Family<2> = Family::counter(
    "aliasstat_foreign_other_packets_total",
    "Packets of foreign addresses (neither on this host nor documented) without a series of their own, summed per interface and direction: those beyond --max-foreign-series, and those evicted after --foreign-idle without traffic.",
    BUCKET,
);

pub static FOREIGN_OTHER_BYTES: Family<2> = Family::counter(
    "aliasstat_foreign_other_bytes_total",
    "IP-layer bytes of foreign addresses without a series of their own, summed per interface and direction.",
    BUCKET,
);

/// Which pair of families a bucket is exported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bucket {
    ForeignOther,
    NonIp,
    Overflow,
}

impl Bucket {
    const fn families(self) -> (&'static Family<2>, &'static Family<2>) {
        match self {
            Self::ForeignOther => (&FOREIGN_OTHER_BYTES, &FOREIGN_OTHER_PACKETS),
            Self::NonIp => (&NON_IP_BYTES, &NON_IP_PACKETS),
            Self::Overflow => (&OVERFLOW_BYTES, &OVERFLOW_PACKETS),
        }
    }
}

/// Every bucket's counts, by interface name (summed over indexes, as the
/// address series are).
#[derive(Default)]
pub struct Buckets(BTreeMap<(Bucket, Direction, String), Counters>);

impl Buckets {
    pub fn new(other: &[OtherCount], split: &Split, labels: &mut LabelCache) -> Self {
        let mut name = |ifindex| {
            let i = labels.interface(ifindex);
            labels.name(i).to_owned()
        };
        let mut buckets = BTreeMap::new();
        for o in other {
            let bucket = match o.kind {
                OtherKind::NonIp => Bucket::NonIp,
                OtherKind::Overflow => Bucket::Overflow,
                // Idle foreign entries folded away: still foreign traffic
                // without a series of its own.
                OtherKind::Evicted => Bucket::ForeignOther,
            };
            *buckets
                .entry((bucket, o.direction, name(o.ifindex)))
                .or_default() += o.counters;
        }
        for (&(ifindex, direction), c) in &split.other {
            *buckets
                .entry((Bucket::ForeignOther, direction, name(ifindex)))
                .or_default() += *c;
        }
        Self(buckets)
    }

    /// The two families of `bucket`, bytes first (name order).
    pub fn write(&self, out: &mut BytesMut, bucket: Bucket) {
        let (bytes, packets) = bucket.families();
        let of = || self.0.iter().filter(move |((b, ..), _)| *b == bucket);
        let mut section = bytes.open(out);
        for ((_, direction, iface), c) in of() {
            section.sample([direction.metric_name(), iface], c.bytes);
        }
        let mut section = packets.open(out);
        for ((_, direction, iface), c) in of() {
            section.sample([direction.metric_name(), iface], c.packets);
        }
    }
}
