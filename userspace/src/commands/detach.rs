//! `aliasstat detach`: remove every pin, which detaches the programs and
//! drops the counts, and say what went.

use std::{io, path::Path};

use crate::bpf::pins;

/// Removes everything pinned under `bpffs` and returns the report, one
/// line per object removed.
pub fn run(bpffs: &Path) -> io::Result<String> {
    let removed = pins::remove_all(bpffs)?;
    if removed.is_empty() {
        return Ok(format!("nothing pinned under {}\n", bpffs.display()));
    }
    let links = pins::links_dir(bpffs);
    Ok(removed
        .iter()
        .map(|path| {
            let what = if path.starts_with(&links) {
                "link (program detached)"
            } else {
                "map"
            };
            format!("removed {what}: {}\n", path.display())
        })
        .collect())
}
