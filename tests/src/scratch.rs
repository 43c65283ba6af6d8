//! Temporary directories for alias files, Prometheus configs and TSDBs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A fresh directory under the system's temp dir, named like every lab
/// resource (`aslab-<pid>-<counter>-<role>`), removed with its contents on
/// drop.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(role: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("aslab-{}", crate::unique(role)));
        std::fs::create_dir(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to `name` in this directory, replacing what was there,
    /// and returns the file's path.
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let file = self.path.join(name);
        std::fs::write(&file, text)
            .with_context(|| format!("failed to write {}", file.display()))?;
        Ok(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("lab: leaking {}: {e}", self.path.display());
        }
    }
}
