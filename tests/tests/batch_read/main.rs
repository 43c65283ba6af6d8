//! The batched map read (`BPF_MAP_LOOKUP_BATCH`, userspace/src/bpf/sys.rs)
//! returns exactly what the per-key iteration does, on a real pinned map
//! spanning several batches, with a different count in every CPU's slot;
//! and the kernel memory of every map (userspace/src/bpf/memory.rs), as
//! fdinfo reports it, equals the formula, at two capacities.
//!
//! Needs root, like every root suite: without it, or on a kernel without
//! batched lookups, the case is skipped with the reason.

mod batched;
mod memory;

use std::process::ExitCode;

fn main() -> ExitCode {
    lab::harness::run(
        "batch_read",
        &[
            (
                "batched_snapshot_equals_per_key_snapshot",
                batched::equals_per_key,
            ),
            ("map_memory_matches_the_formula", memory::matches_formula),
        ],
    )
}
