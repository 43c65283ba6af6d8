//! The cgroup v2 side: where the hierarchy is mounted, and what a cgroup
//! id stands for (its path, its systemd unit, its processes' names).
//!
//! A cgroup's id is the inode number of its directory, so names come from
//! walking the mount. The walk is cached: it runs again only when an id is
//! unknown, or when a cgroup seen before has gone; a cgroup that has gone
//! keeps its last known name and processes, so its counts stay readable.

use std::{
    collections::{BTreeSet, HashMap},
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// What a cgroup id names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// From the root the daemon counts on, e.g. `/system.slice/nginx.service`.
    pub path: String,
    /// The deepest `.service`, `.scope` or `.socket` in the path.
    pub unit: Option<String>,
    /// Command names of the processes in the cgroup, sorted, without repeats;
    /// the last ones seen for a cgroup that has gone.
    pub processes: Vec<String>,
}

impl Cgroup {
    /// The `unit` label: the unit, or the path where there is none.
    pub fn label(&self) -> &str {
        self.unit.as_deref().unwrap_or(&self.path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("failed to read {path} to find the cgroup2 mount")]
    MountInfo {
        path: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "no cgroup2 filesystem is mounted (see /proc/self/mountinfo): mount one (`mount -t cgroup2 none /sys/fs/cgroup`), pass --cgroup-root DIR, or turn services off with --services off"
    )]
    NoMount,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The first cgroup2 mount in /proc/self/mountinfo: `/sys/fs/cgroup` on a
/// unified host, `/sys/fs/cgroup/unified` on a hybrid one.
pub fn find_mount() -> Result<PathBuf, CgroupError> {
    let text = fs::read_to_string(MOUNTINFO).map_err(|source| CgroupError::MountInfo {
        path: MOUNTINFO,
        source,
    })?;
    mount_in(&text).ok_or(CgroupError::NoMount)
}

/// The mount point of the first cgroup2 line of a mountinfo text.
fn mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        // `id parent dev root mountpoint opts [optional...] - fstype src opts`
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split(' ').next()?;
        let point = left.split(' ').nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(unescape(point)))
    })
}

/// Mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The deepest path component that is a systemd unit that can own sockets.
pub fn unit_of(path: &str) -> Option<String> {
    path.rsplit('/')
        .find(|c| {
            [".service", ".scope", ".socket"]
                .iter()
                .any(|s| c.ends_with(s) && c.len() > s.len())
        })
        .map(str::to_owned)
}

/// The id → name cache over one cgroup2 directory tree.
#[derive(Debug)]
pub struct Names {
    root: PathBuf,
    known: HashMap<u64, Known>,
}

#[derive(Debug)]
struct Known {
    cgroup: Cgroup,
    /// Its directory when last walked; `None` once it has gone.
    dir: Option<PathBuf>,
}

impl Names {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            known: HashMap::new(),
        }
    }

    /// The names of `ids`, walking the tree again if one is unknown or one
    /// that was there has gone. Processes are read afresh for live cgroups.
    pub fn resolve(&mut self, ids: &BTreeSet<u64>) -> HashMap<u64, Cgroup> {
        let gone = self
            .known
            .values()
            .any(|k| k.dir.as_ref().is_some_and(|d| !d.is_dir()));
        if gone || ids.iter().any(|id| !self.known.contains_key(id)) {
            self.walk();
        }
        ids.iter()
            .map(|&id| {
                let cgroup = match self.known.get_mut(&id) {
                    Some(k) => {
                        if let Some(dir) = &k.dir {
                            k.cgroup.processes = processes(dir);
                        }
                        k.cgroup.clone()
                    }
                    // Gone before it was ever walked: only its id is known.
                    None => Cgroup {
                        path: format!("cgroup-id:{id}"),
                        unit: None,
                        processes: Vec::new(),
                    },
                };
                (id, cgroup)
            })
            .collect()
    }

    /// Walks the tree: every directory found gets (or keeps) its name;
    /// those not found any more are kept as gone.
    fn walk(&mut self) {
        for k in self.known.values_mut() {
            k.dir = None;
        }
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let path = relative(&self.root, &dir);
            let known = self.known.entry(meta.ino()).or_insert_with(|| Known {
                cgroup: Cgroup {
                    unit: unit_of(&path),
                    path: path.clone(),
                    processes: Vec::new(),
                },
                dir: None,
            });
            known.cgroup.unit = unit_of(&path);
            known.cgroup.path = path;
            known.dir = Some(dir.clone());
            if let Ok(entries) = fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
    }
}

fn relative(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    format!("/{}", rel.to_string_lossy())
}

/// The command names of the processes in the cgroup at `dir`.
fn processes(dir: &Path) -> Vec<String> {
    let Ok(pids) = fs::read_to_string(dir.join("cgroup.procs")) else {
        return Vec::new();
    };
    let names: BTreeSet<String> = pids
        .lines()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|comm| comm.trim_end().to_owned())
        .collect();
    names.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount() {
        let hybrid = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            mount_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified =
            "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(mount_in(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        let spaced = "50 23 0:40 / /run/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(mount_in(spaced), Some(PathBuf::from("/run/my cg")));
        assert_eq!(mount_in("31 23 0:28 / /sys rw - sysfs sysfs rw\n"), None);
    }

    #[test]
    fn units_come_from_the_deepest_unit_component() {
        let cases = [
            ("/system.slice/nginx.service", Some("nginx.service")),
            (
                "/user.slice/user-1000.slice/session-3.scope",
                Some("session-3.scope"),
            ),
            (
                "/system.slice/docker-0123abcd.scope",
                Some("docker-0123abcd.scope"),
            ),
            ("/system.slice/nginx.service/worker", Some("nginx.service")),
            ("/system.slice", None),
            ("/", None),
            ("/.service", None),
        ];
        for (path, unit) in cases {
            assert_eq!(unit_of(path).as_deref(), unit, "{path}");
        }
    }

    #[test]
    fn names_survive_their_cgroup() {
        let root = std::env::temp_dir().join(format!("aliasstat-names-{}", std::process::id()));
        let dir = root.join("web.service");
        fs::create_dir_all(&dir).unwrap();
        let id = fs::metadata(&dir).unwrap().ino();
        let mut names = Names::new(root.clone());
        let ids = BTreeSet::from([id]);
        let first = names.resolve(&ids);
        assert_eq!(first[&id].path, "/web.service");
        assert_eq!(first[&id].label(), "web.service");
        fs::remove_dir(&dir).unwrap();
        assert_eq!(names.resolve(&ids)[&id].path, "/web.service");
        assert_eq!(
            names.resolve(&BTreeSet::from([u64::MAX]))[&u64::MAX].path,
            format!("cgroup-id:{}", u64::MAX)
        );
        fs::remove_dir(&root).unwrap();
    }
}
