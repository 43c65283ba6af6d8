//! What the .deb holds, before anything is installed.

use std::{collections::BTreeSet, process::Command};

use anyhow::{Result, bail, ensure};
use lab::{cmd, scratch::Scratch};

use crate::{Outcome, check_eq, package, root, subcommands};

/// Every file the package installs, as `dpkg-deb -c` names them.
pub fn expected_files() -> Result<BTreeSet<String>> {
    let mut files: BTreeSet<String> = [
        "/usr/bin/aliasstat",
        "/usr/lib/systemd/system/aliasstat.service",
        "/etc/aliasstat/aliases.toml",
        "/usr/share/man/man1/aliasstat.1.gz",
        "/usr/share/bash-completion/completions/aliasstat",
        "/usr/share/zsh/vendor-completions/_aliasstat",
        "/usr/share/fish/vendor_completions.d/aliasstat.fish",
        "/usr/share/aliasstat/dashboards/aliasstat.json",
        "/usr/share/aliasstat/dashboards/aliasstat-fleet.json",
        "/usr/share/aliasstat/dashboards/aliasstat-billing.json",
        "/usr/share/aliasstat/rules/alerts.yml",
        "/usr/share/aliasstat/rules/recording.yml",
        "/usr/share/doc/aliasstat/copyright",
        "/usr/share/doc/aliasstat/changelog.Debian.gz",
    ]
    .map(str::to_owned)
    .into();
    for sub in subcommands()? {
        files.insert(format!("/usr/share/man/man1/aliasstat-{sub}.1.gz"));
    }
    Ok(files)
}

/// The regular files in the .deb, from `dpkg-deb -c`.
pub fn packaged_files(deb: &std::path::Path) -> Result<BTreeSet<String>> {
    let listing = cmd::run(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    Ok(listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect())
}

pub fn run() -> Result<Outcome> {
    let deb = package()?;
    check_eq(
        "files in the package",
        &expected_files()?,
        &packaged_files(&deb)?,
    )?;

    let field = |name: &str| cmd::run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name));
    check_eq("Package", &"aliasstat\n".to_owned(), &field("Package")?)?;
    check_eq(
        "Version",
        &format!("{}\n", crate::debian_version()),
        &field("Version")?,
    )?;
    let depends = field("Depends")?;
    ensure!(
        depends.starts_with("libc6"),
        "Depends should name glibc: {depends}"
    );

    let control = Scratch::new("deb-control")?;
    cmd::run(
        Command::new("dpkg-deb")
            .arg("-e")
            .arg(&deb)
            .arg(control.path().join("DEBIAN")),
    )?;
    let conffiles = std::fs::read_to_string(control.path().join("DEBIAN/conffiles"))?;
    check_eq(
        "conffiles",
        &"/etc/aliasstat/aliases.toml\n".to_owned(),
        &conffiles,
    )?;
    // The unit is installed, never enabled or started: the scripts only
    // re-enable what the admin had enabled (`was-enabled`) and reload.
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let Ok(text) = std::fs::read_to_string(control.path().join("DEBIAN").join(script)) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            let starts = line.contains("systemctl") && line.contains(" start ")
                || line.contains("deb-systemd-invoke start");
            ensure!(!starts, "{script} starts the unit: {line}");
            if line.starts_with("deb-systemd-helper enable") {
                ensure!(
                    text.contains("if deb-systemd-helper --quiet was-enabled"),
                    "{script} enables the unit without the was-enabled guard"
                );
            }
        }
    }

    let tree = Scratch::new("deb-tree")?;
    cmd::run(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(tree.path()),
    )?;
    let shipped = std::fs::read_to_string(root().join("dist/aliases.toml"))?;
    let conffile = std::fs::read_to_string(tree.path().join("etc/aliasstat/aliases.toml"))?;
    ensure!(conffile == shipped, "the conffile is not dist/aliases.toml");
    let unit =
        std::fs::read_to_string(tree.path().join("usr/lib/systemd/system/aliasstat.service"))?;
    let hand = std::fs::read_to_string(root().join("dist/aliasstat.service"))?;
    check_eq(
        "the packaged unit: dist/aliasstat.service with ExecStart at /usr/bin",
        &hand.replace(
            "ExecStart=/usr/local/bin/aliasstat ",
            "ExecStart=/usr/bin/aliasstat ",
        ),
        &unit,
    )?;
    // Stripped: no symbol table left (readelf comes with binutils, as the
    // `strip` that `cargo xtask deb` runs does).
    let sections = cmd::run(
        Command::new("readelf")
            .arg("--section-headers")
            .arg(tree.path().join("usr/bin/aliasstat")),
    )?;
    ensure!(
        !sections.contains(".symtab"),
        "the packaged binary is not stripped"
    );
    Ok(Outcome::Passed)
}

/// Tags lintian may report, with why each is kept.
const KEPT_WARNINGS: &[(&str, &str)] = &[(
    "initial-upload-closes-no-bugs",
    "the package is not uploaded to Debian, so there is no ITP bug to close",
)];

pub fn lintian() -> Result<Outcome> {
    let deb = package()?;
    // lintian exits non-zero for errors; its report is on stdout either way.
    let out = Command::new("lintian").arg(&deb).output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{}", report.trim_end());
    let mut unexpected = Vec::new();
    for line in report.lines() {
        let kept = KEPT_WARNINGS
            .iter()
            .find(|(tag, _)| line.starts_with("W: ") && line.contains(&format!(": {tag}")));
        match kept {
            Some((tag, why)) => println!("kept {tag}: {why}"),
            None if line.starts_with("E: ") || line.starts_with("W: ") => unexpected.push(line),
            None => {}
        }
    }
    if !unexpected.is_empty() || !out.status.success() {
        bail!("lintian ({}): {}", out.status, unexpected.join("\n"));
    }
    Ok(Outcome::Passed)
}
