//! `dpkg -i`, the installed files at work, then `dpkg -r` and `dpkg -P`.

use std::{
    collections::BTreeSet, net::IpAddr, os::unix::fs::PermissionsExt as _, path::Path,
    process::Command,
};

use aliasstat::inventory::{Config, parse_config};
use anyhow::{Context as _, Result, ensure};
use lab::{Netns, cmd};

use crate::{Outcome, check_eq, contents, package};

const CONFFILE: &str = "/etc/aliasstat/aliases.toml";
const STATE_DIR: &str = "/var/lib/aliasstat";

/// The installed package; purged on drop, so that a failed or panicking
/// test leaves the machine as it found it.
struct Installed;

impl Installed {
    fn new(deb: &Path) -> Result<Self> {
        let guard = Self;
        cmd::run(Command::new("dpkg").arg("-i").arg(deb))?;
        Ok(guard)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(Command::new("dpkg").args(["-P", "aliasstat"])) {
            eprintln!("package: could not purge aliasstat: {e:#}");
        }
    }
}

/// `dpkg-query`'s status of the package, `None` once dpkg forgot it.
fn status() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "aliasstat"])
        .output()
        .ok()?;
    let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !status.ends_with("not-installed")).then_some(status)
}

pub fn run() -> Result<Outcome> {
    if let Some(status) = status() {
        return Ok(Outcome::Skipped(format!(
            "aliasstat is already known to dpkg here ({status}); the test would replace it"
        )));
    }
    if Path::new("/etc/aliasstat").exists() || Path::new(STATE_DIR).exists() {
        return Ok(Outcome::Skipped(
            "/etc/aliasstat or /var/lib/aliasstat exists; purging the test package would delete it"
                .into(),
        ));
    }
    let deb = package()?;
    let files = contents::packaged_files(&deb)?;
    let installed = Installed::new(&deb)?;
    check_eq("status", &Some("install ok installed".into()), &status())?;
    installed_files_work(&files)?;

    cmd::run(Command::new("dpkg").args(["-r", "aliasstat"]))?;
    check_eq(
        "status after -r",
        &Some("deinstall ok config-files".into()),
        &status(),
    )?;
    let left: BTreeSet<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    check_eq(
        "files left after -r",
        &BTreeSet::from([&CONFFILE.to_owned()]),
        &left,
    )?;
    ensure!(
        Path::new(STATE_DIR).is_dir(),
        "-r removed {STATE_DIR}; only purge should"
    );

    cmd::run(Command::new("dpkg").args(["-P", "aliasstat"]))?;
    drop(installed);
    check_eq("status after -P", &None, &status())?;
    for gone in files
        .iter()
        .map(String::as_str)
        .chain(["/etc/aliasstat", STATE_DIR])
    {
        ensure!(!Path::new(gone).exists(), "{gone} is still there after -P");
    }
    Ok(Outcome::Passed)
}

fn installed_files_work(files: &BTreeSet<String>) -> Result<()> {
    for f in files {
        ensure!(Path::new(f).is_file(), "{f} is not installed");
    }
    let version = cmd::run(Command::new("/usr/bin/aliasstat").arg("--version"))?;
    check_eq(
        "--version",
        &format!("aliasstat {}\n", env!("CARGO_PKG_VERSION")),
        &version,
    )?;
    for page in ["aliasstat", "aliasstat-run"] {
        let found = cmd::run(Command::new("man").args(["-w", page]))?;
        check_eq(
            &format!("man -w {page}"),
            &format!("/usr/share/man/man1/{page}.1.gz\n"),
            &found,
        )?;
    }
    let mode = std::fs::metadata(STATE_DIR)
        .with_context(|| format!("{STATE_DIR} was not created"))?
        .permissions()
        .mode();
    check_eq("mode of /var/lib/aliasstat", &0o40700, &mode)?;
    // Installed, not enabled: no unit directory holds a link to it.
    let wants =
        cmd::run(Command::new("find").args(["/etc/systemd/system", "-name", "aliasstat.service"]))
            .unwrap_or_default();
    check_eq("links enabling the unit", &String::new(), &wants)?;
    check_on_the_shipped_example()
}

/// `aliasstat check` on the conffile exits as the file and the host say:
/// in a namespace without the aliases, every one is missing (1); with each
/// on the interface the file names (lo for those that name none), file and
/// host agree (0).
fn check_on_the_shipped_example() -> Result<()> {
    let text = std::fs::read_to_string(CONFFILE)?;
    let config = parse_config(&text, Path::new(CONFFILE))?;
    let ns = Netns::new("deb")?;
    ns.ip(&["link", "set", "lo", "up"])?;
    for key in ["all", "default"] {
        ns.sysctl(&format!("net.ipv6.conf.{key}.disable_ipv6"), "0")?;
    }
    expect_check(&ns, &config)?;
    for (i, alias) in config.aliases().iter().enumerate() {
        let interface = alias.interface.as_deref().unwrap_or("lo");
        if interface != "lo" && ns.ip(&["link", "show", interface]).is_err() {
            let peer = format!("peer{i}");
            ns.ip(&[
                "link", "add", interface, "type", "veth", "peer", "name", &peer,
            ])?;
        }
        let len = if alias.address.is_ipv4() { 32 } else { 128 };
        let address = format!("{}/{len}", alias.address);
        ns.ip(&["addr", "add", &address, "dev", interface, "nodad"])?;
    }
    expect_check(&ns, &config)
}

/// Runs the installed `aliasstat check` in `ns` and compares its exit
/// status and findings with what the file and `ip addr` say they must be.
fn expect_check(ns: &Netns, config: &Config) -> Result<()> {
    let host: Vec<(String, IpAddr, String)> = {
        let json: serde_json::Value = serde_json::from_str(&ns.ip(&["-j", "addr", "show"])?)?;
        let mut found = Vec::new();
        for link in json.as_array().into_iter().flatten() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                let (Some(local), Some(scope)) = (a["local"].as_str(), a["scope"].as_str()) else {
                    continue;
                };
                let ifname = link["ifname"].as_str().unwrap_or_default().to_owned();
                found.push((ifname, local.parse()?, scope.to_owned()));
            }
        }
        found
    };
    let mut findings = BTreeSet::new();
    for alias in config.aliases() {
        let on: Vec<&str> = host
            .iter()
            .filter(|(_, a, _)| *a == alias.address)
            .map(|(i, _, _)| i.as_str())
            .collect();
        if on.is_empty() {
            findings.insert(format!(
                "missing: alias \"{}\" ({})",
                alias.name, alias.address
            ));
        } else if let Some(want) = &alias.interface
            && !on.contains(&want.as_str())
        {
            findings.insert(format!(
                "misplaced: alias \"{}\" ({})",
                alias.name, alias.address
            ));
        }
    }
    for (ifname, address, scope) in &host {
        if scope == "global" && config.alias(*address).is_none() {
            findings.insert(format!("undocumented: {address}/ on {ifname}"));
        }
    }
    let out = ns
        .exec("/usr/bin/aliasstat")
        .args(["check", "--config", CONFFILE])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("aliasstat check ({}):\n{}", out.status, stdout.trim_end());
    let expected_code = if findings.is_empty() { 0 } else { 1 };
    check_eq(
        "check's exit status",
        &Some(expected_code),
        &out.status.code(),
    )?;
    if findings.is_empty() {
        check_eq(
            "check's report",
            &"the alias file and this host agree\n",
            &&*stdout,
        )?;
    } else {
        // Each finding the model predicts starts one line; nothing else.
        check_eq(
            "check's number of findings",
            &findings.len(),
            &stdout.lines().count(),
        )?;
        for finding in &findings {
            let (head, tail) = finding.split_once('/').unwrap_or((finding, ""));
            ensure!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(head) && l.contains(tail)),
                "check did not report `{finding}`:\n{stdout}"
            );
        }
    }
    Ok(())
}
