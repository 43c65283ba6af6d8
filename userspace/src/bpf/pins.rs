//! Where aliasstat keeps its objects on the bpffs, and what each means.
//!
//! ```text
//! <bpffs>/v1/ADDRESSES, OTHER                     layout v1 (the first release)
//! <bpffs>/v2/ADDRESSES_V4, ADDRESSES_V6, OTHER    layout v2: a map per family
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

use common::names::{ADDRESSES, ADDRESSES_V4, ADDRESSES_V6};

/// Version of the map layout (key and value types, map set). Bump it when
/// the maps or `common::{Addr4Key, Addr6Key, OtherKey, Counters}` change,
/// and teach `counters::AddressMaps::open` the new set. The robustness
/// suite's `layout_upgrade` upgrades from the first release's v1.
pub const LAYOUT_VERSION: u32 = 2;

/// The address maps of layout `layout`: one for both families in v1, one
/// per family since.
pub fn address_maps(layout: u32) -> &'static [&'static str] {
    if layout == 1 {
        &[ADDRESSES]
    } else {
        &[ADDRESSES_V4, ADDRESSES_V6]
    }
}

pub fn maps_dir(bpffs: &Path, layout: u32) -> PathBuf {
    bpffs.join(format!("v{layout}"))
}

pub fn links_dir(bpffs: &Path) -> PathBuf {
    bpffs.join("links")
}

pub fn link(bpffs: &Path, iface: &str, hook: &str) -> PathBuf {
    links_dir(bpffs).join(iface).join(hook)
}

/// Layouts are numbered from 1: a `v0` directory is not ours.
const FIRST_LAYOUT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("failed to list the pinned maps under `{}`", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{}` holds maps of layout v{found}, made by a newer aliasstat than this one (layout v{LAYOUT_VERSION}); run the newer version, or `aliasstat detach` to start over",
        path.display()
    )]
    Newer { path: PathBuf, found: u32 },
}

/// The map layouts pinned under one bpffs, as this binary reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pinned {
    /// This binary's own layout is pinned: new counts go there.
    pub current: bool,
    /// Older layouts an upgrade left behind, oldest first: their maps no
    /// longer change and are read as carried-over counts, each with its own
    /// key types (`counters::AddressMaps`).
    pub carried: Vec<u32>,
}

impl Pinned {
    /// Every pinned layout, oldest first.
    pub fn all(&self) -> impl Iterator<Item = u32> + '_ {
        let current = self.current.then_some(LAYOUT_VERSION);
        self.carried.iter().copied().chain(current)
    }

    pub fn is_empty(&self) -> bool {
        !self.current && self.carried.is_empty()
    }

    /// The one rule for pinned layouts: this binary's, older ones carried
    /// over, and a newer one (whose types this binary cannot know) the
    /// first newer version found, as `Err`. `current` is
    /// [`LAYOUT_VERSION`] but for the tests.
    fn classify(current: u32, found: impl IntoIterator<Item = u32>) -> Result<Self, u32> {
        let mut pinned = Self::default();
        for v in found {
            match v {
                v if v == current => pinned.current = true,
                v if v > current => return Err(v),
                v => pinned.carried.push(v),
            }
        }
        pinned.carried.sort_unstable();
        Ok(pinned)
    }
}

/// The layouts with maps pinned under `bpffs`; maps of a newer layout are
/// an error.
pub fn layouts(bpffs: &Path) -> Result<Pinned, LayoutError> {
    versions(bpffs)
        .map_err(|source| LayoutError::Dir {
            path: bpffs.to_owned(),
            source,
        })
        .and_then(|found| {
            Pinned::classify(LAYOUT_VERSION, found).map_err(|found| LayoutError::Newer {
                path: bpffs.to_owned(),
                found,
            })
        })
}

/// The layout versions of the `v<layout>` directories under `bpffs`.
fn versions(bpffs: &Path) -> io::Result<Vec<u32>> {
    let mut found = Vec::new();
    for entry in read_dir_if_exists(bpffs)? {
        let name = entry?.file_name();
        if let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|v| v.parse().ok())
            .filter(|&v| v >= FIRST_LAYOUT)
        {
            found.push(v);
        }
    }
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
    for layout in versions(bpffs)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_layouts_are_current_carried_over_or_refused() {
        let ok = |current, carried: &[u32]| {
            Ok(Pinned {
                current,
                carried: carried.to_vec(),
            })
        };
        // This binary's layout is v3 here: (versions found, the result).
        let cases = [
            (&[][..], ok(false, &[])),
            (&[3], ok(true, &[])),
            (&[2], ok(false, &[2])),
            (&[3, 2, 1], ok(true, &[1, 2])),
            (&[4], Err(4)),
            (&[1, 3, 5], Err(5)),
            (&[2, 9], Err(9)),
        ];
        for (found, expected) in cases {
            assert_eq!(
                Pinned::classify(3, found.iter().copied()),
                expected,
                "{found:?}"
            );
        }
    }

    #[test]
    fn only_layout_directories_count() {
        let dir = std::env::temp_dir().join(format!("aliasstat-pins-{}", std::process::id()));
        for name in ["v1", "v0", "vx", "links", "v10"] {
            fs::create_dir_all(dir.join(name)).unwrap();
        }
        let mut found = versions(&dir).unwrap();
        found.sort_unstable();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, [1, 10]);
        assert_eq!(versions(&dir.join("missing")).unwrap(), Vec::<u32>::new());
    }
}
