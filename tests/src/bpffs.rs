//! A bpffs that both the caller and `ip netns exec` children see.
//!
//! `ip netns exec` remounts /sys in its private mount namespace, which hides
//! the usual /sys/fs/bpf from the daemon. A bpffs mounted under /run before
//! the daemon starts is inherited by that namespace, so the daemon pins and
//! `dump` (or the test itself) reads the very same maps.

use std::{
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

pub const ROOT: &str = "/run/aliasstat-lab/bpffs";
/// Where the daemons' --state-dir go: on /run, which `ip netns exec`
/// children see as well, and never the host's /var/lib/aliasstat.
const STATE_ROOT: &str = "/run/aliasstat-lab/state";
/// `statfs(2)` magic of a bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// A directory of its own on the lab's bpffs, for one daemon's pins, and
/// the state directory (history, peer record) that lives as long as they
/// do; both removed with everything in them on drop.
#[derive(Debug)]
pub struct BpfDir {
    path: PathBuf,
    state: PathBuf,
}

impl BpfDir {
    pub fn new(role: &str) -> Result<Self> {
        mount()?;
        let unique = crate::unique(role);
        let path = Path::new(ROOT).join(&unique);
        std::fs::create_dir(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        let state = Path::new(STATE_ROOT).join(&unique);
        std::fs::create_dir_all(&state)
            .with_context(|| format!("failed to create {}", state.display()))?;
        Ok(Self { path, state })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `--state-dir` of the daemons that pin here.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }
}

impl Drop for BpfDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("lab: leaking pins in {}: {e}", self.path.display());
        }
        if let Err(e) = std::fs::remove_dir_all(&self.state) {
            eprintln!("lab: leaking state in {}: {e}", self.state.display());
        }
    }
}

/// Mounts the lab's bpffs unless it is there already.
pub fn mount() -> Result<()> {
    if is_bpffs(Path::new(ROOT))? {
        return Ok(());
    }
    std::fs::create_dir_all(ROOT).with_context(|| format!("failed to create {ROOT}"))?;
    let target = CString::new(ROOT)?;
    // SAFETY: valid C strings; no mount data.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // Another process may have mounted it in the meantime.
        if !is_bpffs(Path::new(ROOT))? {
            bail!("failed to mount a bpffs on {ROOT}: {err}");
        }
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> Result<bool> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: a zeroed statfs is a valid out-buffer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a statfs buffer of the right type.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::NotFound {
            return Ok(false);
        }
        return Err(err).with_context(|| format!("statfs {}", path.display()));
    }
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

/// Removes pin directories whose creating process is gone.
pub(crate) fn remove_stale() -> Result<()> {
    if !is_bpffs(Path::new(ROOT))? {
        return Ok(());
    }
    for entry in std::fs::read_dir(ROOT)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(owner) = crate::owner(&name.to_string_lossy()) else {
            continue;
        };
        if !crate::alive(owner) {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("failed to remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}
