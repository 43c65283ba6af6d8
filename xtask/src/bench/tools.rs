//! The programs the benchmarks run: the lab's `udpflood` sender and
//! `probe` bench target, built in release mode, and what the machine is.

use std::{
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::stats::median;
use crate::{cmd, workspace};

pub struct Tools {
    pub aliasstat: PathBuf,
    pub udpflood: PathBuf,
    pub probe: PathBuf,
}

impl Tools {
    /// Builds the sender and the probe; `aliasstat` is already built.
    pub fn build(aliasstat: PathBuf) -> Result<Self> {
        let udpflood = artifact(
            workspace::cargo().args(["build", "--release", "-p", "lab", "--bin", "udpflood"]),
            "udpflood",
        )?;
        // A bench target, because it needs the lab's dev-dependencies (aya
        // and the aliasstat library); `--no-run` builds it in the release
        // profile without running it through cargo's bench harness.
        let probe = artifact(
            workspace::cargo().args(["bench", "-p", "lab", "--bench", "probe", "--no-run"]),
            "probe",
        )?;
        Ok(Self {
            aliasstat,
            udpflood,
            probe,
        })
    }

    /// Runs `probe <args>` (outside any namespace) and parses its JSON.
    pub fn probe(&self, args: &[&str]) -> Result<Value> {
        let out = cmd::stdout(Command::new(&self.probe).args(args))?;
        serde_json::from_str(out.trim())
            .with_context(|| format!("probe {args:?} printed no JSON: {out}"))
    }

    /// Times `trials` reads of the address map pinned in `pins`, each way
    /// `probe read` reads it.
    pub fn read_map(&self, pins: &Path, trials: usize) -> Result<MapRead> {
        self.probe(&[
            "read",
            "--bpffs",
            arg(pins),
            "--trials",
            &trials.to_string(),
        ])
        .map(MapRead)
    }
}

/// What `probe read` printed: seconds per read, a list for each way.
pub struct MapRead(Value);

impl MapRead {
    /// The median seconds of reading the map the `way` way
    /// (`batched`, `per_key`, or `batched_cpu`: the batched read's CPU
    /// time).
    pub fn median(&self, way: &str) -> Result<f64> {
        let times: Vec<f64> = self.0[way]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        median(&times).context("probe read: no times")
    }
}

/// Runs a cargo build command and returns the executable it reports for
/// target `name`.
fn artifact(cargo: &mut Command, name: &str) -> Result<PathBuf> {
    cargo.arg("--message-format=json-render-diagnostics");
    let mut child = cargo
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start cargo to build {name}"))?;
    let stdout = child.stdout.take().context("stdout is piped")?;
    let mut found = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("could not read cargo's output")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == name
            && let Some(path) = message["executable"].as_str()
        {
            found = Some(PathBuf::from(path));
        }
    }
    let status = child.wait().context("could not wait for cargo")?;
    if !status.success() {
        bail!("building {name} failed ({status})");
    }
    found.with_context(|| format!("cargo built no `{name}` executable"))
}

/// What the numbers were measured on.
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub rustc: String,
    pub memory: String,
}

impl Machine {
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
        let rustc = cmd::stdout(Command::new("rustc").arg("-V"))
            .map_or_else(|_| "unknown".to_owned(), |v| v.trim().to_owned());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let kib: f64 = m
                    .lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(format!("{:.0} GiB", kib / (1024.0 * 1024.0)))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cpu,
            cores,
            kernel,
            rustc,
            memory,
        }
    }

    pub fn table(&self) -> String {
        format!(
            "| CPU | cores | memory | kernel | rustc |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
            self.cpu, self.cores, self.memory, self.kernel, self.rustc
        )
    }
}

/// A path as text, for a command line.
pub fn arg(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
