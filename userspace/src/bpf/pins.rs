//! Where aliasstat keeps its objects on the bpffs, and what each means.
//!
//! ```text
//! <bpffs>/v<layout>/ADDRESSES, OTHER   the maps of one map layout
//! <bpffs>/links/<interface>/<hook>     tc-ingress, tc-egress, xdp-ingress
//! ```
//!
//! Maps sit under their layout version: an upgrade that changes the layout
//! pins new maps beside the old ones, which stop changing once the links
//! point at the new programs and are then read as carried-over counts.
//! Links are pinned so the programs keep counting while no daemon runs.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// Version of the map layout (key and value types, map set). Bump it when
/// `common::{AddrKey, OtherKey, Counters}` change. The test-only feature
/// simulates an upgrade without changing the types.
#[cfg(not(feature = "simulate-layout-upgrade"))]
pub const LAYOUT_VERSION: u32 = 1;
#[cfg(feature = "simulate-layout-upgrade")]
pub const LAYOUT_VERSION: u32 = 2;

/// The layouts this binary can read. Every layout so far shares the key
/// and value types, so all of them are read the same way.
pub const READABLE_LAYOUTS: std::ops::RangeInclusive<u32> = 1..=LAYOUT_VERSION;

pub fn maps_dir(bpffs: &Path, layout: u32) -> PathBuf {
    bpffs.join(format!("v{layout}"))
}

pub fn links_dir(bpffs: &Path) -> PathBuf {
    bpffs.join("links")
}

pub fn link(bpffs: &Path, iface: &str, hook: &str) -> PathBuf {
    links_dir(bpffs).join(iface).join(hook)
}

/// Layout versions with maps pinned under `bpffs`, oldest first.
pub fn layouts(bpffs: &Path) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in read_dir_if_exists(bpffs)? {
        let name = entry?.file_name();
        if let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
        {
            found.push(v);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Pinned links as (interface, hook, path).
pub fn links(bpffs: &Path) -> io::Result<Vec<(String, String, PathBuf)>> {
    let mut found = Vec::new();
    for iface in read_dir_if_exists(&links_dir(bpffs))? {
        let iface = iface?;
        for hook in fs::read_dir(iface.path())? {
            let hook = hook?;
            found.push((
                iface.file_name().to_string_lossy().into_owned(),
                hook.file_name().to_string_lossy().into_owned(),
                hook.path(),
            ));
        }
    }
    found.sort();
    Ok(found)
}

fn read_dir_if_exists(
    dir: &Path,
) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

/// Removes every link pin (detaching programs no process holds open) and
/// every map pin (dropping their counts), then the emptied directories.
/// Returns what was removed, links first.
pub fn remove_all(bpffs: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (_, _, path) in links(bpffs)? {
        fs::remove_file(&path)?;
        removed.push(path);
    }
    for layout in layouts(bpffs)? {
        let dir = maps_dir(bpffs, layout);
        let mut maps: Vec<PathBuf> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        maps.sort();
        for path in maps {
            fs::remove_file(&path)?;
            removed.push(path);
        }
        fs::remove_dir(&dir)?;
    }
    // Interface directories under links/, then links/ and the root, if
    // nothing else lives there.
    for iface in read_dir_if_exists(&links_dir(bpffs))? {
        let _ = fs::remove_dir(iface?.path());
    }
    let _ = fs::remove_dir(links_dir(bpffs));
    let _ = fs::remove_dir(bpffs);
    Ok(removed)
}
