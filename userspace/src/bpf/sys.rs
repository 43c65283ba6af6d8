//! Every raw `bpf(2)` call, for the commands aya 0.14 does not wrap:
//! batched map reads and writes (`BPF_MAP_LOOKUP_BATCH`,
//! `BPF_MAP_UPDATE_BATCH`, Linux 5.6+) and the atomic read-and-remove of
//! one entry (`BPF_MAP_LOOKUP_AND_DELETE_ELEM`, 5.14+ for per-CPU hashes).
//!
//! One batched call moves thousands of entries, where aya's per-key
//! iteration makes two calls per entry (`GET_NEXT_KEY`, then
//! `LOOKUP_ELEM`). The wrappers work on byte buffers; [`crate::bpf::counters`]
//! gives them types. Nothing here panics: every kernel answer, expected or
//! not, comes back as a value or a [`SysError`].

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
};

/// `enum bpf_cmd` numbers from include/uapi/linux/bpf.h.
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
/// The kernel-internal "operation not supported" (not `EOPNOTSUPP`), which
/// `bpf(2)` returns for a map type without batch operations.
const ENOTSUPP: i32 = 524;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const _: () = assert!(size_of::<BatchAttr>() == 56);

/// The `elem` member of `union bpf_attr` (`value` is also `next_key`).
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const _: () = assert!(size_of::<ElemAttr>() == 32);

#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// This kernel or map type has no batch operations (the command is
    /// unknown before 5.6, or the map type lacks it): use per-key calls.
    #[error("the kernel does not support {cmd} on this map")]
    Unsupported {
        cmd: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{cmd} failed on map fd {fd}")]
    Syscall {
        cmd: &'static str,
        fd: i32,
        #[source]
        source: io::Error,
    },
    #[error(
        "{cmd}: buffers for {count} entries of {key_size}+{value_size} bytes do not fit \
         ({keys} key bytes, {values} value bytes)"
    )]
    BufferSize {
        cmd: &'static str,
        count: usize,
        key_size: usize,
        value_size: usize,
        keys: usize,
        values: usize,
    },
}

/// The size of one element's value in a batch buffer: a per-CPU map has
/// one slot per possible CPU, each padded to 8 bytes.
pub const fn batch_value_size(value_size: usize, per_cpu_slots: Option<usize>) -> usize {
    match per_cpu_slots {
        Some(cpus) => value_size.next_multiple_of(8) * cpus,
        None => value_size,
    }
}

/// Where a batched read continues: the kernel's opaque cursor.
#[derive(Clone, Debug)]
pub struct BatchCursor {
    /// A hash map's token is a `u32` bucket index; other maps use a key
    /// (`key_size` bytes). The buffer holds either, 8-byte aligned.
    token: Vec<u64>,
    next: Vec<u64>,
    started: bool,
}

impl BatchCursor {
    /// A cursor at the start of a map with keys of `key_size` bytes.
    pub fn new(key_size: usize) -> Self {
        let words = key_size.div_ceil(8).max(1);
        Self {
            token: vec![0; words],
            next: vec![0; words],
            started: false,
        }
    }
}

/// What one [`lookup_batch`] call returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// `count` entries were filled and more may follow from the cursor.
    More { count: usize },
    /// `count` entries were filled and the map holds no more.
    Done { count: usize },
    /// Some bucket holds more entries than the buffers fit: call again
    /// with bigger buffers (nothing was filled, the cursor is unchanged).
    TooSmall,
}

/// Reads up to `count` entries from `cursor` on into `keys` (`key_size`
/// bytes each) and `values` (`value_size` bytes each, see
/// [`batch_value_size`]), and moves the cursor past them.
pub fn lookup_batch(
    map: BorrowedFd<'_>,
    cursor: &mut BatchCursor,
    key_size: usize,
    value_size: usize,
    keys: &mut [u8],
    values: &mut [u8],
) -> Result<Batch, SysError> {
    const CMD: &str = "BPF_MAP_LOOKUP_BATCH";
    let count = fit(CMD, key_size, value_size, keys.len(), values.len())?;
    if cursor.token.len() * 8 < key_size {
        // A cursor made for smaller keys: the kernel would write past it.
        return Err(SysError::BufferSize {
            cmd: CMD,
            count: count as usize,
            key_size,
            value_size,
            keys: keys.len(),
            values: values.len(),
        });
    }
    let mut attr = BatchAttr {
        in_batch: if cursor.started {
            cursor.token.as_ptr() as u64
        } else {
            0
        },
        out_batch: cursor.next.as_mut_ptr() as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count,
        map_fd: map.as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    // The kernel writes `count` back: how many entries it filled.
    let result = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
    let filled = attr.count as usize;
    match result {
        Ok(()) => {
            std::mem::swap(&mut cursor.token, &mut cursor.next);
            cursor.started = true;
            Ok(Batch::More { count: filled })
        }
        // ENOENT is the normal end of the map, with the last entries filled.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Batch::Done { count: filled }),
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => Ok(Batch::TooSmall),
        Err(e) => Err(classify(CMD, map, e)),
    }
}

/// Writes `count` entries (the buffers' length over the sizes) with
/// `elem_flags` (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`); returns how many
/// the kernel wrote before it stopped, which is all of them on success.
pub fn update_batch(
    map: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    keys: &[u8],
    values: &[u8],
    elem_flags: u64,
) -> Result<usize, SysError> {
    const CMD: &str = "BPF_MAP_UPDATE_BATCH";
    let count = fit(CMD, key_size, value_size, keys.len(), values.len())?;
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count,
        map_fd: map.as_raw_fd() as u32,
        elem_flags,
        ..BatchAttr::default()
    };
    bpf(BPF_MAP_UPDATE_BATCH, &mut attr).map_err(|e| classify(CMD, map, e))?;
    Ok(attr.count as usize)
}

/// Reads the entry at `key` into `value` and deletes it, in one call, so
/// that no update can fall between the two. `key` is `key_size` bytes and
/// `value` `value_size` (see [`batch_value_size`]: a per-CPU map fills one
/// padded slot per possible CPU). `Ok(false)` when the key was not there.
pub fn lookup_and_delete(
    map: BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
    key: &[u8],
    value: &mut [u8],
) -> Result<bool, SysError> {
    const CMD: &str = "BPF_MAP_LOOKUP_AND_DELETE_ELEM";
    // Exactly one entry: the kernel reads and writes the map's sizes.
    if fit(CMD, key_size, value_size, key.len(), value.len())? != 1 {
        return Err(SysError::BufferSize {
            cmd: CMD,
            count: key.len() / key_size,
            key_size,
            value_size,
            keys: key.len(),
            values: value.len(),
        });
    }
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..ElemAttr::default()
    };
    match bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut attr) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(classify(CMD, map, e)),
    }
}

/// How many whole entries both buffers hold, as the kernel's `u32` count.
fn fit(
    cmd: &'static str,
    key_size: usize,
    value_size: usize,
    keys: usize,
    values: usize,
) -> Result<u32, SysError> {
    let too_small = |count| SysError::BufferSize {
        cmd,
        count,
        key_size,
        value_size,
        keys,
        values,
    };
    if key_size == 0 || value_size == 0 {
        return Err(too_small(0));
    }
    let count = keys / key_size;
    if count == 0 || !keys.is_multiple_of(key_size) || values != count * value_size {
        return Err(too_small(count));
    }
    u32::try_from(count).map_err(|_| too_small(count))
}

fn classify(cmd: &'static str, map: BorrowedFd<'_>, source: io::Error) -> SysError {
    match source.raw_os_error() {
        // EINVAL: a kernel before 5.6 does not know the command at all.
        Some(ENOTSUPP | libc::EOPNOTSUPP | libc::EINVAL) => SysError::Unsupported { cmd, source },
        _ => SysError::Syscall {
            cmd,
            fd: map.as_raw_fd(),
            source,
        },
    }
}

/// A member of `union bpf_attr`: only the two above are ever passed.
trait Attr {}
impl Attr for BatchAttr {}
impl Attr for ElemAttr {}

fn bpf<A: Attr>(cmd: libc::c_long, attr: &mut A) -> io::Result<()> {
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size passed; every
    // pointer in it refers to a live buffer of the length its sizes imply,
    // which `fit` checked.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<A>()) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_values_are_padded_per_slot() {
        // (value size, per-CPU slots, batch value size)
        let cases = [
            (16, Some(2), 32),
            (16, None, 16),
            (12, Some(3), 48),
            (8, Some(1), 8),
            (1, Some(4), 32),
        ];
        for (size, cpus, expected) in cases {
            assert_eq!(batch_value_size(size, cpus), expected, "{size} {cpus:?}");
        }
    }

    #[test]
    fn buffers_must_hold_whole_matching_entries() {
        // (key size, value size, key bytes, value bytes, count)
        let cases = [
            (24, 32, 24 * 10, 32 * 10, Some(10)),
            (24, 32, 24, 32, Some(1)),
            (24, 32, 0, 0, None),             // nothing to fill
            (24, 32, 24 * 10 + 1, 320, None), // a partial key
            (24, 32, 240, 32 * 9, None),      // values for fewer entries
            (0, 32, 0, 32, None),
        ];
        for (key, value, keys, values, count) in cases {
            let got = fit("test", key, value, keys, values).ok();
            assert_eq!(got, count, "{key} {value} {keys} {values}");
        }
    }

    #[test]
    fn lookup_and_delete_takes_exactly_one_entry() {
        // SAFETY: fd 0 is open for the whole test, and the sizes are refused
        // before any system call, so it is never used as a map.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        // (key size, value size, key bytes, value bytes)
        let cases = [
            (24, 32, 24, 31),     // a value too short for the map's
            (24, 32, 23, 32),     // a key too short
            (24, 32, 48, 64),     // two entries
            (0, 32, 0, 32),       // no key size at all
            (24, 32, 24, 32 * 2), // values for two CPUs, a size for one
        ];
        for (key_size, value_size, keys, values) in cases {
            let got = lookup_and_delete(
                fd,
                key_size,
                value_size,
                &vec![0; keys],
                &mut vec![0; values],
            );
            assert!(
                matches!(got, Err(SysError::BufferSize { .. })),
                "{key_size} {value_size} {keys} {values}: {got:?}"
            );
        }
    }

    #[test]
    fn unsupported_is_told_apart_from_failure() {
        // SAFETY: fd 0 is open for the whole test; only its number is used.
        let fd = unsafe { BorrowedFd::borrow_raw(0) };
        for errno in [ENOTSUPP, libc::EOPNOTSUPP, libc::EINVAL] {
            let e = classify("X", fd, io::Error::from_raw_os_error(errno));
            assert!(matches!(e, SysError::Unsupported { .. }), "{errno}: {e}");
        }
        let e = classify("X", fd, io::Error::from_raw_os_error(libc::EPERM));
        assert!(matches!(e, SysError::Syscall { .. }), "{e}");
    }
}
