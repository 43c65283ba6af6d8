//! Version 1 of the interval blob: the counts as five columns (series id
//! gaps, bytes in, bytes out, packets in, packets out), each column split
//! into byte planes, and each plane deflated when that makes it smaller.
//!
//! Why planes: byte k of every value of a column lies together, so the
//! high planes of byte counts (nearly constant) and the low ones (nearly
//! random) each get deflate Huffman codes of their own, an idle direction
//! is a column of width 0, and a random plane is stored as it is. A
//! varint stream mixes all of these in one byte alphabet, which is why the
//! first release's blobs (plain varints) took some 12 bytes per address
//! and interval and missed the 2 KiB a day.
//!
//! Why packets as residuals: packets and bytes of an address move
//! together, so packets are stored as their difference from what the
//! interval's average packet size in that direction predicts from the
//! bytes. The prediction is made from totals stored in the blob, so each
//! blob still decodes on its own; wrapping arithmetic keeps every count
//! exact whatever the prediction.

use std::cell::RefCell;

use common::Counters;
use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};
use zlib_rs::{Inflate, InflateFlush, Status};

use super::codec::{Damaged, Reader, Traffic, put};

/// A plane stored as it is, as a raw deflate stream, or as the one byte
/// all its values share (dense series ids, a direction's constant high
/// byte), which costs no inflate when reading.
const RAW: u8 = 0;
const DEFLATED: u8 = 1;
const SAME: u8 = 2;

/// Deflate's fastest level: on these planes the higher ones save about 4%
/// for five times the time, and the write is on the daemon's interval.
const LEVEL: u32 = 1;

/// Deflate cannot expand its input more than about 1032 times, so a blob
/// that claims more entries than that allows is damaged, and is refused
/// before anything that size is allocated.
const MAX_RATIO: usize = 1040;

/// Predicts packets from bytes at one direction's average packet size in
/// the interval. The totals saturate: only the prediction's quality
/// depends on them, never a count.
#[derive(Clone, Copy)]
struct PacketSize {
    packets: u64,
    bytes: u64,
}

impl PacketSize {
    fn of(counts: impl Iterator<Item = Counters>) -> Self {
        counts.fold(
            Self {
                packets: 0,
                bytes: 0,
            },
            |s, c| Self {
                packets: s.packets.saturating_add(c.packets),
                bytes: s.bytes.saturating_add(c.bytes),
            },
        )
    }

    fn predict(self, bytes: u64) -> u64 {
        // The common case without a 128-bit division.
        if let Some(product) = bytes.checked_mul(self.packets) {
            return product / self.bytes.max(1);
        }
        let p = u128::from(bytes) * u128::from(self.packets) / u128::from(self.bytes.max(1));
        u64::try_from(p).unwrap_or(u64::MAX)
    }

    fn residual(self, c: Counters) -> u64 {
        zigzag(c.packets.wrapping_sub(self.predict(c.bytes)))
    }

    fn counters(self, bytes: u64, residual: u64) -> Counters {
        Counters::new(self.predict(bytes).wrapping_add(unzigzag(residual)), bytes)
    }
}

/// A wrapped difference as a small number when it is small either way.
fn zigzag(difference: u64) -> u64 {
    let d = difference as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> u64 {
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as u64
}

/// Appends `entries` (sorted by id, none of them zero) to `out`.
pub(super) fn encode(entries: &[(u64, Traffic)], out: &mut Vec<u8>) {
    let rx = PacketSize::of(entries.iter().map(|e| e.1.rx));
    let tx = PacketSize::of(entries.iter().map(|e| e.1.tx));
    put(out, entries.len() as u64);
    for v in [rx.packets, rx.bytes, tx.packets, tx.bytes] {
        put(out, v);
    }
    let mut last = 0;
    let gaps = entries.iter().map(|&(id, _)| {
        debug_assert!(id >= last, "series ids must be sorted");
        let gap = id - last;
        last = id;
        gap
    });
    let columns: [Vec<u64>; 5] = [
        gaps.collect(),
        entries.iter().map(|e| e.1.rx.bytes).collect(),
        entries.iter().map(|e| e.1.tx.bytes).collect(),
        entries.iter().map(|e| rx.residual(e.1.rx)).collect(),
        entries.iter().map(|e| tx.residual(e.1.tx)).collect(),
    ];
    let mut planes = Planes::new(entries.len());
    for column in &columns {
        planes.put(column, out);
    }
}

/// Splits columns into planes and deflates them, with one compressor and
/// two buffers for the whole blob.
struct Planes {
    compressor: Box<CompressorOxide>,
    plane: Vec<u8>,
    deflated: Vec<u8>,
}

impl Planes {
    fn new(n: usize) -> Self {
        let flags = create_comp_flags_from_zip_params(LEVEL as i32, 0, 0);
        Self {
            compressor: Box::new(CompressorOxide::new(flags)),
            plane: Vec::with_capacity(n),
            deflated: vec![0; n],
        }
    }

    fn put(&mut self, column: &[u64], out: &mut Vec<u8>) {
        let max = column.iter().copied().max().unwrap_or(0);
        let width = (64 - max.leading_zeros()).div_ceil(8);
        out.push(width as u8);
        for k in 0..width {
            self.plane.clear();
            self.plane
                .extend(column.iter().map(|v| (v >> (8 * k)) as u8));
            if let [first, rest @ ..] = &self.plane[..]
                && rest.iter().all(|b| b == first)
            {
                out.extend([SAME, *first]);
                continue;
            }
            self.compressor.reset();
            // An output buffer no larger than the plane: a stream that
            // does not fit in it saves nothing, and the plane goes raw.
            let (status, _, len) = compress(
                &mut self.compressor,
                &self.plane,
                &mut self.deflated,
                TDEFLFlush::Finish,
            );
            if status == TDEFLStatus::Done && len < self.plane.len() {
                out.push(DEFLATED);
                put(out, len as u64);
                out.extend_from_slice(&self.deflated[..len]);
            } else {
                out.push(RAW);
                out.extend_from_slice(&self.plane);
            }
        }
    }
}

/// What decoding a blob works in, kept per thread between blobs: a
/// month's report decodes thousands, and allocating and zeroing an
/// inflater and five columns for each was a third of its time.
///
/// The inflater is zlib-rs, not miniz_oxide, which writes the streams:
/// a report inflates some eight short streams per blob, and building each
/// stream's Huffman tables took miniz_oxide as long as the inflate itself
/// (zlib-rs fills root tables of 9 and 6 bits where miniz_oxide fills
/// 10-bit ones); a month's report took an eighth less CPU with it.
struct Scratch {
    inflater: Inflate,
    plane: Vec<u8>,
    columns: [Vec<u64>; 5],
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            // A raw deflate stream (no zlib header) with deflate's largest
            // window, which is what miniz_oxide writes.
            inflater: Inflate::new(false, 15),
            plane: Vec::new(),
            columns: Default::default(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Reads what [`encode`] wrote from `r`, to its end.
pub(super) fn decode(
    r: &mut Reader<'_>,
    mut each: impl FnMut(u64, Traffic),
) -> Result<(), Damaged> {
    let n = usize::try_from(r.get()?).map_err(|_| r.damaged())?;
    if n > r.left().saturating_mul(MAX_RATIO) {
        return Err(r.damaged());
    }
    let mut size = || Ok::<_, Damaged>((r.get()?, r.get()?));
    let ((rp, rb), (tp, tb)) = (size()?, size()?);
    let rx = PacketSize {
        packets: rp,
        bytes: rb,
    };
    let tx = PacketSize {
        packets: tp,
        bytes: tb,
    };
    SCRATCH.with_borrow_mut(|scratch| {
        read_columns(r, n, scratch)?;
        let [gaps, rx_bytes, tx_bytes, rx_residuals, tx_residuals] = &scratch.columns;
        let mut id = 0u64;
        for i in 0..n {
            id = id.checked_add(gaps[i]).ok_or_else(|| r.damaged())?;
            let traffic = Traffic {
                rx: rx.counters(rx_bytes[i], rx_residuals[i]),
                tx: tx.counters(tx_bytes[i], tx_residuals[i]),
            };
            each(id, traffic);
        }
        Ok(())
    })
}

/// The five columns of `n` values each into `scratch.columns`.
fn read_columns(r: &mut Reader<'_>, n: usize, scratch: &mut Scratch) -> Result<(), Damaged> {
    let Scratch {
        inflater,
        plane,
        columns,
    } = scratch;
    plane.resize(n, 0);
    for column in columns {
        column.clear();
        column.resize(n, 0);
        let width = r.take(1)?[0];
        if width > 8 {
            return Err(r.damaged());
        }
        for k in 0..u32::from(width) {
            read_plane(r, inflater, plane)?;
            for (v, &b) in column.iter_mut().zip(plane.iter()) {
                *v |= u64::from(b) << (8 * k);
            }
        }
    }
    if !r.done() {
        return Err(r.damaged());
    }
    Ok(())
}

/// One plane of `plane.len()` bytes into `plane`.
fn read_plane(r: &mut Reader<'_>, inflater: &mut Inflate, plane: &mut [u8]) -> Result<(), Damaged> {
    let at = r.damaged();
    match r.take(1)?[0] {
        RAW => plane.copy_from_slice(r.take(plane.len())?),
        SAME => plane.fill(r.take(1)?[0]),
        DEFLATED => {
            let len = usize::try_from(r.get()?).map_err(|_| r.damaged())?;
            let stream = r.take(len)?;
            inflater.reset(false);
            let status = inflater.decompress(stream, plane, InflateFlush::Finish);
            if status != Ok(Status::StreamEnd) || inflater.total_out() != plane.len() as u64 {
                return Err(at);
            }
        }
        _ => return Err(at),
    }
    Ok(())
}
