//! `aliasstat run` inside a namespace, and `aliasstat dump` beside it.

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::{BpfDir, Netns, Snapshot, Veth, cmd};

/// How long loading and attaching may take before the daemon is declared
/// stuck. Generous: the verifier is slow on a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon may take to detach and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `aliasstat` binary under test: `$ALIASSTAT_BIN` (set by `cargo
/// xtask test` and `cargo xtask demo`), else the workspace's release build.
pub fn binary() -> Result<PathBuf> {
    let path = match std::env::var_os("ALIASSTAT_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/aliasstat"),
    };
    if !path.is_file() {
        bail!(
            "no aliasstat binary at {}: build it with `cargo xtask build`, or point ALIASSTAT_BIN at one",
            path.display()
        );
    }
    Ok(path)
}

/// Where `aliasstat run` counts ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Tc,
    Xdp,
}

impl Hook {
    fn as_arg(self) -> &'static str {
        match self {
            Self::Tc => "tc",
            Self::Xdp => "xdp",
        }
    }
}

/// What to start `aliasstat run` with.
#[derive(Debug)]
pub struct Config<'a> {
    pub ns: &'a Netns,
    pub bpffs: &'a BpfDir,
    pub interfaces: Vec<&'a str>,
    pub hook: Hook,
    pub map_capacity: Option<u32>,
    /// `--config`; the daemon's default path when unset.
    pub config: Option<&'a Path>,
    /// `--listen`; the daemon's default when unset. Each namespace has its
    /// own ports, so the default only clashes within one namespace.
    pub listen: Option<SocketAddr>,
}

impl<'a> Config<'a> {
    /// TC on `interface`, default capacity.
    pub fn new(ns: &'a Netns, bpffs: &'a BpfDir, interface: &'a str) -> Self {
        Self {
            ns,
            bpffs,
            interfaces: vec![interface],
            hook: Hook::Tc,
            map_capacity: None,
            config: None,
            listen: None,
        }
    }
}

/// How to start `aliasstat run` beyond its [`Config`]: for tests of
/// upgrades, privileges and flags the lab does not model.
#[derive(Debug, Default)]
pub struct Launch {
    /// Instead of [`binary`].
    pub binary: Option<PathBuf>,
    /// Runs the binary through this command line, e.g. `setpriv` with its
    /// flags; it must exec the binary so that the pid stays aliasstat's.
    pub wrapper: Vec<std::ffi::OsString>,
    /// Flags appended after those of the [`Config`].
    pub args: Vec<std::ffi::OsString>,
}

/// A running `aliasstat run`.
///
/// [`Daemon::stop`] stops it and checks that it exited cleanly. Dropping a
/// daemon that was not stopped (a test failed or panicked) stops it too and
/// prints its log, which is then what explains the failure.
///
/// The daemon is also told to exit when the thread that started it ends
/// (`PR_SET_PDEATHSIG`), so start it from a thread that outlives it.
pub struct Daemon {
    label: String,
    child: Child,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl Daemon {
    /// Starts the daemon and waits until it logs that it is ready.
    pub fn start(config: &Config<'_>) -> Result<Self> {
        Self::start_with(config, &Launch::default())
    }

    /// [`Daemon::start`], with another binary, a wrapper or more flags.
    pub fn start_with(config: &Config<'_>, launch: &Launch) -> Result<Self> {
        let binary = match &launch.binary {
            Some(path) => path.clone(),
            None => binary()?,
        };
        let mut cmd = match launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = config.ns.exec(program);
                cmd.args(args).arg(&binary);
                cmd
            }
            None => config.ns.exec(&binary),
        };
        cmd.arg("run");
        for iface in &config.interfaces {
            cmd.args(["--interface", iface]);
        }
        cmd.args(["--hook", config.hook.as_arg()]);
        if let Some(capacity) = config.map_capacity {
            cmd.args(["--map-capacity", &capacity.to_string()]);
        }
        cmd.arg("--bpffs").arg(config.bpffs.path());
        // The first release has no state; a test that names its own keeps it.
        if launch.binary.is_none() && !launch.args.iter().any(|a| a == "--state-dir") {
            cmd.arg("--state-dir").arg(config.bpffs.state_dir());
        }
        if let Some(file) = config.config {
            cmd.arg("--config").arg(file);
        }
        if let Some(listen) = config.listen {
            cmd.args(["--listen", &listen.to_string()]);
        }
        cmd.args(&launch.args);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd::die_with_parent(&mut cmd);
        let label = format!("aliasstat in {}", config.ns.name());
        let shown = cmd::show(&cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("failed to start `{shown}`"))?;

        let log = Arc::new(Mutex::new(String::new()));
        let (lines, ready) = mpsc::channel();
        let readers = vec![
            drain(
                child.stderr.take().expect("piped"),
                log.clone(),
                Some(lines),
            ),
            drain(child.stdout.take().expect("piped"), log.clone(), None),
        ];
        let mut daemon = Self {
            label,
            child,
            log,
            readers,
            stopped: false,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match ready.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if says_ready(&line) => return Ok(daemon),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = daemon.child.wait()?;
                    daemon.stopped = true;
                    daemon.join_readers();
                    bail!(
                        "`{shown}` exited ({status}) before it was ready; its log:\n{}",
                        daemon.log()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    daemon.stopped = true;
                    let _ = daemon.terminate();
                    bail!(
                        "`{shown}` did not log `ready` within {READY_TIMEOUT:?}; its log so far:\n{}",
                        daemon.log()
                    );
                }
            }
        }
    }

    /// Everything the daemon printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends SIGHUP: the daemon reloads its alias file.
    pub fn hangup(&self) -> Result<()> {
        // SAFETY: plain kill(2) on our own child, which is not reaped
        // before `stop` or drop.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("failed to send SIGHUP to {}", self.label));
        }
        Ok(())
    }

    /// Waits for the first log line past byte `since` of [`Daemon::log`]
    /// that contains `needle`, for at most `within`, and returns it.
    pub fn wait_for_line(&self, since: usize, needle: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let log = self.log();
            if let Some(line) = log
                .get(since..)
                .unwrap_or_default()
                .lines()
                .find(|line| line.contains(needle))
            {
                return Ok(line.to_owned());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not log `{needle}` within {within:?}; its log since then:\n{}",
                    self.label,
                    log.get(since..).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The daemon's process id: `ip netns exec` and the wrappers exec, so
    /// it is aliasstat's own.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the daemon has exited, and how.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// SIGKILLs the daemon, as the OOM killer or a crash would stop it:
    /// no handler runs, nothing is unpinned. Returns its log.
    pub fn kill(mut self) -> Result<String> {
        self.stopped = true;
        self.child.kill()?;
        self.child.wait()?;
        self.join_readers();
        Ok(self.log())
    }

    /// SIGTERMs the daemon and fails unless it detaches and exits 0.
    pub fn stop(mut self) -> Result<()> {
        self.stopped = true;
        let status = self.terminate()?;
        if !status.success() {
            bail!(
                "{} exited with {status} after SIGTERM; its log:\n{}",
                self.label,
                self.log()
            );
        }
        Ok(())
    }

    fn terminate(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            self.join_readers();
            return Ok(status);
        }
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.join_readers();
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        self.join_readers();
        bail!(
            "{} was still running {STOP_TIMEOUT:?} after SIGTERM; killed it. Its log:\n{}",
            self.label,
            self.log()
        )
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let outcome = match self.terminate() {
            Ok(status) => status.to_string(),
            Err(e) => format!("{e:#}"),
        };
        eprintln!("--- log of {}, stopped early ({outcome}) ---", self.label);
        eprintln!("{}", self.log().trim_end());
        eprintln!("--- end of log ---");
    }
}

/// Whether a log line announces that every program is attached: the
/// message (after env_logger's `[… module] ` prefix) starts with `ready:`.
/// A path or name that merely contains the word does not count.
fn says_ready(line: &str) -> bool {
    let message = line.split_once("] ").map_or(line, |(_, m)| m);
    message.starts_with("ready:")
}

/// Copies `from` line by line into `log`, forwarding lines to `lines`,
/// until the pipe closes.
fn drain(
    from: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
            if let Some(lines) = &lines {
                // The receiver is gone once the daemon is ready.
                let _ = lines.send(line);
            }
        }
    })
}

/// `aliasstat dump --json` of the maps pinned in `bpffs`, run inside `ns`
/// so that interface names resolve where the daemon counted.
pub fn dump(ns: &Netns, bpffs: &BpfDir) -> Result<Snapshot> {
    crate::stress::dump_with(&binary()?, ns, bpffs)
}

/// A daemon on each end of a veth, each with pins of its own, for the
/// scenarios that count the same traffic as sent and as received.
pub struct BothEnds {
    // Fields drop in order: each daemon goes before its pins.
    client: Daemon,
    server: Daemon,
    client_pins: BpfDir,
    server_pins: BpfDir,
}

impl BothEnds {
    pub fn start(veth: &Veth) -> Result<Self> {
        let client_pins = BpfDir::new("cli")?;
        let server_pins = BpfDir::new("srv")?;
        let client = Daemon::start(&Config::new(
            &veth.client.ns,
            &client_pins,
            &veth.client.ifname,
        ))?;
        let server = Daemon::start(&Config::new(
            &veth.server.ns,
            &server_pins,
            &veth.server.ifname,
        ))?;
        Ok(Self {
            client,
            server,
            client_pins,
            server_pins,
        })
    }

    /// Each end's maps as they are now: (client, server).
    pub fn dump(&self, veth: &Veth) -> Result<(Snapshot, Snapshot)> {
        Ok((
            dump(&veth.client.ns, &self.client_pins)?,
            dump(&veth.server.ns, &self.server_pins)?,
        ))
    }

    pub fn stop(self) -> Result<()> {
        self.client.stop()?;
        self.server.stop()
    }
}

/// `aliasstat dump` in its table form, for people.
pub fn dump_table(ns: &Netns, bpffs: &BpfDir) -> Result<String> {
    cmd::run(
        ns.exec(binary()?)
            .args(["dump", "--bpffs"])
            .arg(bpffs.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_a_word_not_a_substring() {
        assert!(says_ready(
            "[INFO aliasstat] ready: counting on vb (tc ingress, tc egress)"
        ));
        assert!(!says_ready("[INFO aliasstat] already pinned"));
        assert!(!says_ready("[INFO aliasstat] readying maps"));
        assert!(!says_ready(
            "[INFO aliasstat] 2 documented aliases from /tmp/ready/aliases.toml"
        ));
    }
}
