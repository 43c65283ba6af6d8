//! Least privilege, shown: the daemon runs and counts with exactly the
//! capabilities dist/aliasstat.service grants (read from that file, so the
//! unit and this proof cannot drift apart), fails with a clear message
//! without any one of them, and the read-only commands need none.

use std::{
    ffi::OsString,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, Result, bail, ensure};
use lab::{
    BpfDir, Count, Daemon, Dir, Hook, Veth,
    daemon::{Config, Launch, binary},
    dump,
    link::Ipv6,
    stress, traffic,
};

use crate::{Outcome, check_eq};

/// `nobody`: a uid that owns nothing.
const NOBODY: u32 = 65534;
const LISTEN: &str = "127.0.0.1:9864";

fn unit_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/aliasstat.service")
}

/// The capabilities of the unit, as `setpriv` names them (`bpf`), from its
/// `CapabilityBoundingSet=`, which must equal its `AmbientCapabilities=`.
fn unit_caps() -> Result<Vec<String>> {
    let path = unit_file();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let setting = |key: &str| -> Result<Vec<String>> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .with_context(|| format!("no {key}= in {}", path.display()))?;
        line.split_whitespace()
            .map(|c| {
                c.strip_prefix("CAP_")
                    .map(str::to_lowercase)
                    .with_context(|| format!("{key}: `{c}` is not a CAP_ name"))
            })
            .collect()
    };
    let bounding = setting("CapabilityBoundingSet")?;
    check_eq(
        "AmbientCapabilities against CapabilityBoundingSet",
        &bounding,
        &setting("AmbientCapabilities")?,
    )?;
    Ok(bounding)
}

fn refs(caps: &[String]) -> Vec<&str> {
    caps.iter().map(String::as_str).collect()
}

struct Lab {
    veth: Veth,
    client: IpAddr,
    server: IpAddr,
}

impl Lab {
    fn new(net: u8) -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        let (client, server) = (IpAddr::from([10, net, 0, 1]), IpAddr::from([10, net, 0, 2]));
        veth.client.add_addr(client, 24)?;
        veth.server.add_addr(server, 24)?;
        veth.know_each_other(&[client], &[server])?;
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        Ok(Self {
            veth,
            client,
            server,
        })
    }

    fn launch(&self, caps: &[&str], uid: Option<u32>) -> Launch {
        Launch {
            wrapper: stress::setpriv(caps, uid),
            args: vec!["--listen".into(), LISTEN.into()],
            ..Launch::default()
        }
    }

    fn start(&self, pins: &BpfDir, launch: &Launch) -> Result<Daemon> {
        Daemon::start_with(
            &Config::new(&self.veth.server.ns, pins, &self.veth.server.ifname),
            launch,
        )
    }

    fn batch(&self, port: u16) -> Result<Count> {
        let from = traffic::udp_socket(&self.veth.client.ns, SocketAddr::new(self.client, port))?;
        let to = traffic::udp_socket(&self.veth.server.ns, SocketAddr::new(self.server, port))?;
        let mut sent = Count::default();
        for payload in [3, 333, 1333] {
            traffic::one_way(&from, &to, payload)?;
            sent += Count::datagram(self.server, payload);
        }
        Ok(sent)
    }

    fn rx(&self, pins: &BpfDir) -> Result<Count> {
        Ok(dump(&self.veth.server.ns, pins)?
            .addresses(&self.veth.server.ifname, Dir::Rx, |_| true)
            .get(&self.server)
            .copied()
            .unwrap_or_default())
    }
}

fn mask(caps: &[&str]) -> Result<u64> {
    caps.iter()
        .try_fold(0, |m, c| Ok(m | 1 << stress::cap_bit(c)?))
}

pub fn counts_with_listed_caps() -> Result<Outcome> {
    let caps = unit_caps()?;
    let caps = refs(&caps);
    println!("  capabilities of dist/aliasstat.service: {caps:?}");
    let lab = Lab::new(100)?;
    let pins = BpfDir::new("srv")?;
    let launch = lab.launch(&caps, None);

    let daemon = lab.start(&pins, &launch)?;
    let eff = stress::effective_caps(daemon.pid())?;
    check_eq(
        "the daemon's CapEff",
        &format!("{:#x}", mask(&caps)?),
        &format!("{eff:#x}"),
    )?;
    let first = lab.batch(40000)?;
    let reply = stress::http_get(&lab.veth.server.ns, LISTEN.parse()?, "/healthz")?;
    check_eq("/healthz", &200, &reply.status)?;
    daemon.stop()?;
    // The second start adopts the pinned links (BPF_OBJ_GET, then
    // BPF_LINK_UPDATE), a different path from the first attach.
    let daemon = lab.start(&pins, &launch)?;
    let second = lab.batch(40001)?;
    check_eq(
        "rx under the unit's capabilities, over a restart",
        &(first + second),
        &lab.rx(&pins)?,
    )?;
    daemon.stop()?;
    // And ingress on XDP instead (`--hook xdp` in ExecStart): another
    // program type and attach path under the same capabilities.
    let daemon = Daemon::start_with(
        &Config {
            hook: Hook::Xdp,
            ..Config::new(&lab.veth.server.ns, &pins, &lab.veth.server.ifname)
        },
        &launch,
    )?;
    let third = lab.batch(40002)?;
    check_eq(
        "rx under the unit's capabilities, then on XDP",
        &(first + second + third),
        &lab.rx(&pins)?,
    )?;
    daemon.stop()?;
    println!(
        "  attached, counted {} exactly, restarted and adopted its links, switched ingress to XDP",
        first + second + third
    );
    Ok(Outcome::Passed)
}

/// What the daemon should say when `cap` is missing: the capability's
/// name, so that the operator knows what to grant.
fn names_capability(message: &str, cap: &str) -> bool {
    message.contains(&format!("CAP_{}", cap.to_uppercase()))
}

pub fn each_cap_needed() -> Result<Outcome> {
    let caps = unit_caps()?;
    let lab = Lab::new(101)?;
    let mut unclear = Vec::new();
    for missing in &caps {
        let fewer: Vec<&str> = caps
            .iter()
            .filter(|c| *c != missing)
            .map(String::as_str)
            .collect();
        let pins = BpfDir::new("srv")?;
        let message = match lab.start(&pins, &lab.launch(&fewer, None)) {
            Ok(daemon) => {
                daemon.stop()?;
                bail!("the daemon started without CAP_{}", missing.to_uppercase());
            }
            Err(e) => format!("{e:#}"),
        };
        // The daemon's own error line, without the verifier's log.
        let said = message
            .lines()
            .find(|l| l.starts_with("aliasstat: "))
            .unwrap_or("(no `aliasstat: ` error line)")
            .to_owned();
        println!("  without CAP_{}: {said}", missing.to_uppercase());
        if !names_capability(&said, missing) {
            unclear.push(format!("without CAP_{}: {said}", missing.to_uppercase()));
        }
    }
    ensure!(
        unclear.is_empty(),
        "the daemon fails without each capability, but these messages do not name the missing \
         one (the operator cannot tell what to grant):\n  {}",
        unclear.join("\n  ")
    );
    Ok(Outcome::Passed)
}

/// A bpffs instance of its own mounted with mode 0700, as systemd mounts
/// /sys/fs/bpf; unmounted on drop.
struct PrivateBpffs {
    path: PathBuf,
}

impl PrivateBpffs {
    fn new() -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = PathBuf::from(format!(
            "/run/aliasstat-lab/priv-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)?;
        let mounted = lab::cmd::run(
            Command::new("mount")
                .args(["-t", "bpf", "-o", "mode=0700", "bpf"])
                .arg(&path),
        );
        if let Err(e) = mounted {
            let _ = std::fs::remove_dir(&path);
            return Err(e);
        }
        Ok(Self { path })
    }
}

impl Drop for PrivateBpffs {
    fn drop(&mut self) {
        let _ = lab::cmd::run(Command::new("umount").arg(&self.path));
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Runs `aliasstat run` in the lab for at most three seconds (then
/// SIGTERM) and returns whether it became ready, with its output.
fn run_briefly(lab: &Lab, wrapper: &[OsString], bpffs: &Path) -> Result<(bool, String)> {
    let mut cmd = lab.veth.server.ns.exec("timeout");
    cmd.args(["-s", "TERM", "3"])
        .args(wrapper)
        .arg(binary()?)
        .args([
            "run",
            "--interface",
            &lab.veth.server.ifname,
            "--listen",
            LISTEN,
            "--bpffs",
        ])
        .arg(bpffs)
        .env("RUST_LOG", "info");
    let out = cmd.output().context("running aliasstat under setpriv")?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    Ok((text.contains("] ready: "), text))
}

/// Why the unit runs as uid 0: a dedicated user with the same three
/// capabilities cannot even reach its own pin directory under a 0700
/// bpffs root, and needs CAP_DAC_READ_SEARCH, which reads any file.
pub fn non_root_user() -> Result<Outcome> {
    let caps = unit_caps()?;
    let caps = refs(&caps);
    let lab = Lab::new(102)?;
    let bpffs = PrivateBpffs::new()?;
    let dir = bpffs.path.join("aliasstat");
    std::fs::create_dir(&dir)?;
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY))?;

    let (ready, log) = run_briefly(&lab, &stress::setpriv(&caps, Some(NOBODY)), &dir)?;
    let said = log
        .lines()
        .find(|l| l.starts_with("aliasstat: "))
        .unwrap_or_default();
    println!("  uid {NOBODY} with {caps:?}, its own pin directory under a 0700 bpffs: {said}");
    ensure!(
        !ready,
        "uid {NOBODY} became ready without CAP_DAC_READ_SEARCH:\n{log}"
    );
    ensure!(
        said.contains("Permission denied"),
        "unexpected failure:\n{log}"
    );

    let more = [&caps[..], &["dac_read_search"]].concat();
    let (ready, log) = run_briefly(&lab, &stress::setpriv(&more, Some(NOBODY)), &dir)?;
    ensure!(
        ready,
        "uid {NOBODY} with {more:?} did not become ready:\n{log}"
    );
    println!("  with CAP_DAC_READ_SEARCH added it runs: a fourth, broad capability");
    // Its links stay pinned after SIGTERM; take them down with the mount.
    lab::cmd::run(
        Command::new(binary()?)
            .arg("detach")
            .arg("--bpffs")
            .arg(&dir),
    )?;
    Ok(Outcome::Passed)
}

/// Runs the binary in the server's namespace under `nobody` (a setpriv
/// command line) with the arguments `args` adds, and returns its output.
fn as_nobody(
    lab: &Lab,
    nobody: &[OsString],
    args: impl FnOnce(&mut Command),
) -> Result<std::process::Output> {
    let mut cmd = lab.veth.server.ns.exec(&nobody[0]);
    cmd.args(&nobody[1..]).arg(binary()?).env_remove("RUST_LOG");
    args(&mut cmd);
    Ok(cmd.output()?)
}

pub fn unprivileged_clients() -> Result<Outcome> {
    let lab = Lab::new(103)?;
    let pins = BpfDir::new("srv")?;
    // The daemon itself with full root: this is about the clients.
    let daemon = Daemon::start_with(
        &Config::new(&lab.veth.server.ns, &pins, &lab.veth.server.ifname),
        &Launch {
            args: vec!["--listen".into(), LISTEN.into()],
            ..Launch::default()
        },
    )?;
    lab.batch(40000)?;
    let nobody = stress::setpriv(&[], Some(NOBODY));

    let config = TempFile::new(&format!(
        "[[alias]]\nname = \"lab-server\"\naddress = \"{}\"\ninterface = \"{}\"\n",
        lab.server, lab.veth.server.ifname
    ))?;
    let out = as_nobody(&lab, &nobody, |cmd| {
        cmd.arg("check").arg("--config").arg(&config.path);
    })?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!(
        "  `aliasstat check` as uid {NOBODY} with no capabilities: {}, {:?}",
        out.status,
        text.trim()
    );
    check_eq(
        "check's exit status (file and host agree)",
        &Some(0),
        &out.status.code(),
    )?;

    let out = as_nobody(&lab, &nobody, |cmd| {
        cmd.args(["top", "--once", "--url", &format!("http://{LISTEN}")]);
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "  `aliasstat top --once` as uid {NOBODY} with no capabilities: {}\n{}",
        out.status,
        text.trim_end()
    );
    ensure!(
        out.status.success(),
        "top --once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        text.contains(&lab.server.to_string()),
        "top --once does not show {}",
        lab.server
    );
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// A world-readable file in the temp dir, removed on drop: the unprivileged
/// user must be able to read it.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(text: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("aslab-{}-aliases.toml", std::process::id()));
        std::fs::write(&path, text)?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        Ok(Self { path })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `systemd-analyze verify` of the shipped unit, with ExecStart pointing
/// at the binary under test (the unit names /usr/local/bin/aliasstat,
/// which a build machine does not have). Skipped without systemd's tools.
pub fn unit_verifies() -> Result<Outcome> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok(Outcome::Skipped(
            "systemd-analyze is not installed".to_owned(),
        ));
    }
    let text = std::fs::read_to_string(unit_file())?;
    let binary = binary()?;
    let text = text.replace("/usr/local/bin/aliasstat", &binary.to_string_lossy());
    // systemd-analyze takes the unit's name from the file name.
    let dir = std::env::temp_dir().join(format!("aslab-{}-unit", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let unit = dir.join("aliasstat.service");
    std::fs::write(&unit, text)?;
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        out.status
    );
    println!("  systemd-analyze verify: clean");
    Ok(Outcome::Passed)
}
