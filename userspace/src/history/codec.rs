//! The compact encoding of one interval's counts and of the counter
//! baseline: LEB128 varints, series ids as gaps from the previous one.
//!
//! One row per interval with one blob, rather than a row per address:
//! SQLite spends some 30 bytes of record and cell overhead on a row, which
//! at 288 intervals a day would alone exceed the 2 KiB per address per day
//! that the store allows itself.
//!
//! Interval blobs are written as version 1 ([`columns`]: planes of
//! columns, deflated), about 6 bytes for an address with traffic both
//! ways. The first release's blobs (a varint stream, 10 to 16 bytes an
//! entry) carry no version and are still read: they start with the first
//! series id, which is at least 1, so their first byte is never
//! [`VERSIONED`].
//!
//! [`columns`]: super::columns

use std::net::IpAddr;

use common::{Counters, Direction};

use super::columns;

/// The first byte of a blob that gives its version in the second.
const VERSIONED: u8 = 0;
const COLUMNS: u8 = 1;

/// An interval's traffic of one series: in (received) and out (sent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub rx: Counters,
    pub tx: Counters,
}

impl Traffic {
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, direction: Direction, c: Counters) {
        match direction {
            Direction::Rx => self.rx += c,
            Direction::Tx => self.tx += c,
        }
    }
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, other: Self) {
        self.rx += other.rx;
        self.tx += other.tx;
    }
}

/// The bytes were not written by [`encode_interval`] or
/// [`encode_baseline`]: the database was damaged or edited.
#[derive(Debug, thiserror::Error)]
#[error("a stored {what} blob is damaged (at byte {at})")]
pub struct Damaged {
    pub what: &'static str,
    pub at: usize,
}

pub(super) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl Reader<'_> {
    pub(super) fn damaged(&self) -> Damaged {
        Damaged {
            what: self.what,
            at: self.at,
        }
    }

    pub(super) fn get(&mut self) -> Result<u64, Damaged> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or_else(|| self.damaged())?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(self.damaged())
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], Damaged> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.damaged())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(super) fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Bytes not read yet.
    pub(super) fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// `entries`, sorted by series id, with zero traffic left out.
pub fn encode_interval(entries: &[(u64, Traffic)]) -> Vec<u8> {
    let active: Vec<(u64, Traffic)> = entries
        .iter()
        .filter(|(_, t)| !t.is_zero())
        .copied()
        .collect();
    let mut out = Vec::with_capacity(active.len() * 8 + 16);
    out.extend([VERSIONED, COLUMNS]);
    columns::encode(&active, &mut out);
    out
}

/// Calls `each` with every (series id, traffic) of an interval blob, in
/// series id order, of either version.
pub fn decode_interval(bytes: &[u8], each: impl FnMut(u64, Traffic)) -> Result<(), Damaged> {
    let mut r = Reader {
        bytes,
        at: 0,
        what: "interval",
    };
    if bytes.first() != Some(&VERSIONED) {
        return decode_first_release(&mut r, each);
    }
    match r.take(2)?[1] {
        COLUMNS => columns::decode(&mut r, each),
        _ => Err(r.damaged()),
    }
}

/// The first release's interval blob: per entry the id gap and four
/// varints.
fn decode_first_release(
    r: &mut Reader<'_>,
    mut each: impl FnMut(u64, Traffic),
) -> Result<(), Damaged> {
    let mut id = 0u64;
    while !r.done() {
        id = id.checked_add(r.get()?).ok_or_else(|| r.damaged())?;
        let [rp, rb, tp, tb] = [r.get()?, r.get()?, r.get()?, r.get()?];
        each(
            id,
            Traffic {
                rx: Counters::new(rp, rb),
                tx: Counters::new(tp, tb),
            },
        );
    }
    Ok(())
}

/// The raw kernel counters at a sample, per (ifindex, direction, address):
/// what the next interval's deltas are taken from.
pub type Baseline = Vec<((u32, Direction, IpAddr), Counters)>;

pub fn encode_baseline(counts: &Baseline) -> Vec<u8> {
    let mut out = Vec::with_capacity(counts.len() * 16);
    for ((ifindex, direction, address), c) in counts {
        put(&mut out, u64::from(*ifindex));
        let (family, octets): (u8, Vec<u8>) = match address {
            IpAddr::V4(a) => (4, a.octets().to_vec()),
            IpAddr::V6(a) => (6, a.octets().to_vec()),
        };
        out.push(family | ((*direction as u8) << 4));
        out.extend_from_slice(&octets);
        put(&mut out, c.packets);
        put(&mut out, c.bytes);
    }
    out
}

pub fn decode_baseline(bytes: &[u8]) -> Result<Baseline, Damaged> {
    let mut r = Reader {
        bytes,
        at: 0,
        what: "baseline",
    };
    let mut counts = Vec::new();
    while !r.done() {
        let ifindex = u32::try_from(r.get()?).map_err(|_| r.damaged())?;
        let tag = r.take(1)?[0];
        let direction = match tag >> 4 {
            0 => Direction::Rx,
            1 => Direction::Tx,
            _ => return Err(r.damaged()),
        };
        let address = match tag & 0x0f {
            4 => IpAddr::from(<[u8; 4]>::try_from(r.take(4)?).expect("4 bytes taken")),
            6 => IpAddr::from(<[u8; 16]>::try_from(r.take(16)?).expect("16 bytes taken")),
            _ => return Err(r.damaged()),
        };
        let c = Counters::new(r.get()?, r.get()?);
        counts.push(((ifindex, direction, address), c));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(rp: u64, rb: u64, tp: u64, tb: u64) -> Traffic {
        Traffic {
            rx: Counters::new(rp, rb),
            tx: Counters::new(tp, tb),
        }
    }

    #[test]
    fn intervals_round_trip_and_skip_zeros() {
        let entries = [
            (1, traffic(3, 426, 0, 0)),
            (2, Traffic::default()),
            (7, traffic(0, 0, 1, u64::MAX)),
            (300, traffic(127, 128, 16_383, 16_384)),
        ];
        let blob = encode_interval(&entries);
        assert_eq!(blob[..2], [VERSIONED, COLUMNS]);
        let mut back = Vec::new();
        decode_interval(&blob, |id, t| back.push((id, t))).unwrap();
        assert_eq!(back, [entries[0], entries[2], entries[3]]);
        let mut none = Vec::new();
        decode_interval(&encode_interval(&[]), |id, t| none.push((id, t))).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn packets_stay_exact_whatever_the_average_packet_size() {
        // Packets far from what the interval's average predicts, either
        // way, and totals that saturate.
        let entries = [
            (1, traffic(1, 1_000_000, 0, 0)),
            (2, traffic(1_000_000, 1, 5, 0)),
            (3, traffic(u64::MAX, u64::MAX, 0, 64)),
            (4, traffic(0, 40, u64::MAX, 1)),
        ];
        let mut back = Vec::new();
        decode_interval(&encode_interval(&entries), |id, t| back.push((id, t))).unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn many_entries_round_trip_through_deflated_planes() {
        let entries: Vec<(u64, Traffic)> = (1..=5000u64)
            .map(|i| {
                let bytes = (i * 7919) % 100_000 + 60;
                (i * 2, traffic(bytes / 700 + 1, bytes, i % 3, (i % 3) * 66))
            })
            .collect();
        let blob = encode_interval(&entries);
        // Deflate worked: well under the 8 bytes a varint entry costs here.
        assert!(blob.len() < entries.len() * 6, "{} bytes", blob.len());
        let mut back = Vec::new();
        decode_interval(&blob, |id, t| back.push((id, t))).unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn first_release_blobs_still_read() {
        // Version 0, written by the first release: per entry the id gap,
        // then packets and bytes in, packets and bytes out.
        for (blob, expected) in [
            (vec![], vec![]),
            (
                vec![1, 3, 0xaa, 0x03, 0, 0, 6, 0, 0, 1, 0xff, 0x01],
                vec![(1, traffic(3, 426, 0, 0)), (7, traffic(0, 0, 1, 255))],
            ),
            (
                vec![0x80, 0x01, 1, 2, 3, 4],
                vec![(128, traffic(1, 2, 3, 4))],
            ),
        ] {
            let mut back = Vec::new();
            decode_interval(&blob, |id, t| back.push((id, t))).unwrap();
            assert_eq!(back, expected, "{blob:?}");
        }
    }

    #[test]
    fn baselines_round_trip() {
        let counts: Baseline = vec![
            (
                (2, Direction::Rx, "192.0.2.1".parse().unwrap()),
                Counters::new(1, 2),
            ),
            (
                (9, Direction::Tx, "2001:db8::1".parse().unwrap()),
                Counters::new(u64::MAX, 0),
            ),
        ];
        assert_eq!(decode_baseline(&encode_baseline(&counts)).unwrap(), counts);
    }

    #[test]
    fn damaged_blobs_are_errors() {
        let blob = encode_interval(&[(5, traffic(1, 2, 3, 4))]);
        assert!(decode_interval(&blob[..blob.len() - 1], |_, _| ()).is_err());
        assert!(decode_interval(&[0xff; 11], |_, _| ()).is_err());
        // An unknown version, and a count no blob this small can hold.
        assert!(decode_interval(&[VERSIONED, 9, 0], |_, _| ()).is_err());
        assert!(decode_interval(&[VERSIONED, COLUMNS, 0xff, 0x7f, 0], |_, _| ()).is_err());
        let many = encode_interval(&[(1, traffic(1, 2, 3, 4)), (2, traffic(5, 6, 7, 8))]);
        for cut in 1..many.len() {
            assert!(decode_interval(&many[..cut], |_, _| ()).is_err(), "{cut}");
        }
        assert!(decode_baseline(&[1, 0x24, 1]).is_err());
    }
}
