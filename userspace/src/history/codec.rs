//! The compact encoding of one interval's counts and of the counter
//! baseline: LEB128 varints, series ids as gaps from the previous one.
//!
//! One row per interval with one blob, rather than a row per address:
//! SQLite spends some 30 bytes of record and cell overhead on a row, which
//! at 288 intervals a day would alone exceed the 2 KiB per address per day
//! that the store allows itself; a blob entry for an address with traffic
//! both ways is typically 10 to 16 bytes.

use std::net::IpAddr;

use common::{Counters, Direction};

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

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl Reader<'_> {
    fn damaged(&self) -> Damaged {
        Damaged {
            what: self.what,
            at: self.at,
        }
    }

    fn get(&mut self) -> Result<u64, Damaged> {
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

    fn take(&mut self, n: usize) -> Result<&[u8], Damaged> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.damaged())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// `entries`, sorted by series id, with zero traffic left out.
pub fn encode_interval(entries: &[(u64, Traffic)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 12);
    let mut last = 0;
    for &(id, t) in entries.iter().filter(|(_, t)| !t.is_zero()) {
        debug_assert!(id >= last, "series ids must be sorted");
        put(&mut out, id - last);
        last = id;
        for v in [t.rx.packets, t.rx.bytes, t.tx.packets, t.tx.bytes] {
            put(&mut out, v);
        }
    }
    out
}

/// Calls `each` with every (series id, traffic) of an interval blob.
pub fn decode_interval(bytes: &[u8], mut each: impl FnMut(u64, Traffic)) -> Result<(), Damaged> {
    let mut r = Reader {
        bytes,
        at: 0,
        what: "interval",
    };
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
        let mut back = Vec::new();
        decode_interval(&blob, |id, t| back.push((id, t))).unwrap();
        assert_eq!(back, [entries[0], entries[2], entries[3]]);
        // 1 + 2 + 1 + 3 + 1 + 1 bytes of the first entry's varints.
        assert_eq!(&blob[..5], [1, 3, 0xaa, 0x03, 0]);
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
        assert!(decode_baseline(&[1, 0x24, 1]).is_err());
    }
}
