//! `cargo xtask setup`: make this machine able to build and test aliasstat.
//!
//! Each step checks before it acts, so a second run changes nothing.

use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, workspace};

/// The root tests and the dashboard checks use these: ip and nft for the
/// lab, tmux to drive `aliasstat top`, chromium for the web page suite
/// (headless, over the DevTools protocol), Prometheus and promtool for the rules
/// and dashboards, jq and curl for dashboards/check.sh, node_exporter for
/// the bench's textfile-collector yardstick, lintian and man-db (`man -w`)
/// for the package tests; `cargo xtask deb` needs dpkg-dev (cargo-deb
/// computes `Depends` with dpkg-shlibdeps) and binutils (`strip`).
const ROOT_PACKAGES: &[&str] = &[
    "iproute2",
    "nftables",
    "tmux",
    "chromium",
    "prometheus",
    "jq",
    "curl",
    "prometheus-node-exporter",
    "lintian",
    "man-db",
    "dpkg-dev",
    "binutils",
];

/// Pinned so a new release cannot drop the `llvm-<major>` feature under CI.
/// Raise it when the nightly moves to an LLVM this version does not support.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Pinned so that `cargo xtask deb` builds the same package on every
/// machine; `[package.metadata.deb]` in userspace/Cargo.toml uses its keys.
const CARGO_DEB_VERSION: &str = "3.8.0";

const BPFFS: &str = "/sys/fs/bpf";

pub fn run() -> Result<()> {
    let nightly = Nightly::detect()?;
    ensure_rust_src()?;
    ensure_bpf_linker(&nightly)?;
    ensure_cargo_deb()?;
    let missing = missing_packages()?;
    if is_root() {
        install_packages(&missing)?;
        ensure_bpffs()?;
    } else if !missing.is_empty() {
        eprintln!(
            "note: the root-only tests need Debian packages that are missing: {0}; \
             run `cargo xtask setup` as root, or `apt-get install {0}`",
            missing.join(" ")
        );
    }
    Ok(())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Refuses a root-only subcommand `cargo xtask <command>` that runs without
/// root, saying `why` it needs root and how to run it (`or` appends another
/// way, if there is one).
pub fn require_root(why: &str, command: &str, or: &str) -> Result<()> {
    if !is_root() {
        bail!("not root: {why}; run `sudo -E env \"PATH=$PATH\" cargo xtask {command}`{or}");
    }
    Ok(())
}

/// What bpf-linker must be built against: the nightly that compiles the eBPF
/// crate emits bitcode for its own LLVM, and only that LLVM reads it reliably.
struct Nightly {
    llvm_major: u32,
    /// The real shared library, whose file name is its soname.
    libllvm: PathBuf,
}

impl Nightly {
    fn detect() -> Result<Self> {
        let version = cmd::stdout(rustc_nightly().arg("-vV")).context(
            "nightly toolchain not found: run `rustup toolchain install nightly --component rust-src`",
        )?;
        let llvm_major = llvm_major(&version).with_context(|| {
            format!("`rustc +nightly -vV` reports no `LLVM version: X.Y.Z` line:\n{version}")
        })?;
        let sysroot = cmd::stdout(rustc_nightly().args(["--print", "sysroot"]))?;
        let lib_dir = Path::new(sysroot.trim()).join("lib");
        let libllvm = find_libllvm(&lib_dir, llvm_major)?;
        Ok(Self {
            llvm_major,
            libllvm,
        })
    }

    fn soname(&self) -> String {
        self.libllvm
            .file_name()
            .expect("find_libllvm returns a file path")
            .to_string_lossy()
            .into_owned()
    }
}

fn rustc_nightly() -> Command {
    let mut rustc = Command::new("rustc");
    // A missing nightly must fail fast with our hint, not start a download
    // that cannot reach the rustup servers from CI.
    rustc.arg("+nightly").env("RUSTUP_AUTO_INSTALL", "0");
    rustc
}

fn llvm_major(rustc_version: &str) -> Option<u32> {
    rustc_version
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))?
        .split('.')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Finds `libLLVM.so.<major>.<minor>-rust-…`; the `libLLVM-<major>-rust-….so`
/// beside it is a linker script, not a library.
fn find_libllvm(lib_dir: &Path, llvm_major: u32) -> Result<PathBuf> {
    let prefix = format!("libLLVM.so.{llvm_major}.");
    let entries = fs::read_dir(lib_dir).with_context(|| {
        format!(
            "could not list the nightly's libraries in {}",
            lib_dir.display()
        )
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("could not list {}", lib_dir.display()))?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            found.push(entry.path());
        }
    }
    match <[PathBuf; 1]>::try_from(found) {
        Ok([libllvm]) => Ok(libllvm),
        Err(found) if found.is_empty() => bail!(
            "the nightly toolchain ships no {prefix}* in {}: bpf-linker needs the nightly's \
             shared LLVM (x86_64 Linux nightlies have it); reinstall it with \
             `rustup toolchain install nightly --force`",
            lib_dir.display()
        ),
        Err(found) => bail!(
            "several {prefix}* in {}, cannot tell which one rustc uses: {found:?}",
            lib_dir.display()
        ),
    }
}

fn ensure_rust_src() -> Result<()> {
    let installed = cmd::stdout(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .context("rustup manages the nightly toolchain here; install it from https://rustup.rs")?;
    if installed.lines().any(|line| line.trim() == "rust-src") {
        return Ok(());
    }
    println!("installing rust-src for the nightly toolchain (the eBPF crate builds core from it)");
    cmd::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

/// Builds bpf-linker into `target/tools`, where `.cargo/config.toml` expects
/// it, linked against the nightly's libLLVM through `target/tools/llvm/lib`.
fn ensure_bpf_linker(nightly: &Nightly) -> Result<()> {
    let tools = workspace::root().join("target/tools");
    let prefix = tools.join("llvm");
    let linker = tools.join("bin/bpf-linker");
    let stamp_path = tools.join("bpf-linker.stamp");
    let soname = nightly.soname();
    let stamp = format!("bpf-linker {BPF_LINKER_VERSION} linked against {soname}\n");

    // bpf-linker's build links `-lLLVM` from `$LLVM_PREFIX/lib` and records
    // that directory as its RUNPATH, where the loader then looks for the soname.
    link_libllvm(&prefix.join("lib"), &nightly.libllvm, &soname)?;

    let stamp_matches = fs::read_to_string(&stamp_path).is_ok_and(|old| old == stamp);
    if stamp_matches && cmd::succeeds(Command::new(&linker).arg("--version")) {
        return Ok(());
    }

    println!("building bpf-linker {BPF_LINKER_VERSION} against {soname} (takes a minute or two)");
    cmd::run(
        workspace::cargo()
            .env("LLVM_PREFIX", &prefix)
            .args(["install", "bpf-linker", "--locked", "--force"])
            .args(["--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features"])
            .arg(format!("llvm-{}", nightly.llvm_major))
            .arg("--root")
            .arg(&tools),
    )
    .context("could not build bpf-linker; check that crates.io is reachable")?;
    cmd::stdout(Command::new(&linker).arg("--version")).with_context(|| {
        format!(
            "bpf-linker was built but does not run; check `readelf -d {}` for its RUNPATH",
            linker.display()
        )
    })?;
    fs::write(&stamp_path, stamp)
        .with_context(|| format!("could not write {}", stamp_path.display()))
}

/// Where setup installs cargo-deb.
pub fn cargo_deb() -> PathBuf {
    workspace::root().join("target/tools/bin/cargo-deb")
}

/// Installs cargo-deb into `target/tools` unless that version is there.
fn ensure_cargo_deb() -> Result<()> {
    let installed = cmd::stdout(Command::new(cargo_deb()).arg("--version"))
        .is_ok_and(|v| v.split_whitespace().any(|word| word == CARGO_DEB_VERSION));
    if installed {
        return Ok(());
    }
    println!("installing cargo-deb {CARGO_DEB_VERSION} into target/tools");
    cmd::run(
        workspace::cargo()
            .args(["install", "cargo-deb", "--locked", "--force"])
            .args(["--version", CARGO_DEB_VERSION])
            .arg("--root")
            .arg(workspace::root().join("target/tools")),
    )
    .context("could not install cargo-deb; check that crates.io is reachable")
}

/// Makes `lib_dir` hold exactly `libLLVM.so` and `<soname>`, both pointing at
/// the nightly's library; links left by an older nightly are removed.
fn link_libllvm(lib_dir: &Path, libllvm: &Path, soname: &str) -> Result<()> {
    fs::create_dir_all(lib_dir)
        .with_context(|| format!("could not create {}", lib_dir.display()))?;
    for entry in
        fs::read_dir(lib_dir).with_context(|| format!("could not list {}", lib_dir.display()))?
    {
        let entry = entry.with_context(|| format!("could not list {}", lib_dir.display()))?;
        let name = entry.file_name();
        if name != "libLLVM.so" && name != soname {
            fs::remove_file(entry.path())
                .with_context(|| format!("could not remove stale {}", entry.path().display()))?;
        }
    }
    for name in ["libLLVM.so", soname] {
        let link = lib_dir.join(name);
        match fs::read_link(&link) {
            Ok(target) if target == libllvm => continue,
            Ok(_) => fs::remove_file(&link)
                .with_context(|| format!("could not replace {}", link.display()))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("{} is not a symlink", link.display()));
            }
        }
        symlink(libllvm, &link).with_context(|| {
            format!("could not link {} to {}", link.display(), libllvm.display())
        })?;
    }
    Ok(())
}

fn missing_packages() -> Result<Vec<&'static str>> {
    let mut missing = Vec::new();
    for &package in ROOT_PACKAGES {
        let status = Command::new("dpkg")
            .args(["-s", package])
            .output()
            .context("could not run `dpkg -s`: setup expects a Debian-based system")?;
        // `dpkg -s` also succeeds for removed packages whose config files remain.
        let installed = status.status.success()
            && String::from_utf8_lossy(&status.stdout)
                .lines()
                .any(|line| line == "Status: install ok installed");
        if !installed {
            missing.push(package);
        }
    }
    Ok(missing)
}

fn install_packages(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing Debian packages: {}", missing.join(" "));
    cmd::run(Command::new("apt-get").arg("update"))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(missing),
    )
}

/// The loader pins its maps under /sys/fs/bpf, so bpffs must be mounted there.
fn ensure_bpffs() -> Result<()> {
    let mounts = fs::read_to_string("/proc/mounts").context("could not read /proc/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(BPFFS) && fields.next() == Some("bpf")
    });
    if mounted {
        return Ok(());
    }
    println!("mounting bpffs at {BPFFS}");
    cmd::run(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS])).with_context(|| {
        format!("could not mount bpffs at {BPFFS}; the kernel needs CONFIG_BPF_SYSCALL, and a container needs CAP_SYS_ADMIN")
    })
}
