//! How the daemon asks glibc's allocator to give memory back.
//!
//! Left to its defaults, glibc keeps what a daemon like this one frees:
//! - every thread that allocates gets an arena of its own, and the blocking
//!   thread that renders `/metrics` keeps the freed text of the last
//!   scrape in its arena;
//! - after the first multi-megabyte buffer is freed, the threshold above
//!   which buffers are mapped on their own rises to that size, so every
//!   later scrape body comes from the heap, where freeing it returns
//!   nothing to the kernel;
//! - the start-up's short-lived allocations (the alias file's TOML tree,
//!   the address dump) leave free holes below live data, which only
//!   `malloc_trim` hands back.
//!
//! With 10,000 aliases that was half the daemon's resident memory
//! (BENCHMARKS.md, "Configured aliases").

/// Buffers at least this big are mapped on their own and unmapped when
/// freed: a scrape body, the map snapshot, a large table's storage. Setting
/// it also stops glibc from raising it.
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Called once, before the daemon starts any thread: one arena for all
/// threads (the daemon runs one async thread and a few blocking ones, so
/// they hardly contend) and a fixed mmap threshold.
pub fn tune() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes glibc's allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Hands the free pages inside the heap back to the kernel; for after a
/// burst of short-lived allocations (start-up, an alias file reload).
pub fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory that no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
