//! An interface name and a label holding ESC, a newline and screen-clearing
//! sequences (the kernel takes them), and an alias file that tries the same
//! through TOML escapes: `check`, `aliases`, `dump` and `top --once` print
//! them escaped, one row per line, and the file is refused with its place.

use std::process::Output;

use anyhow::{Result, ensure};
use lab::{BpfDir, Daemon, Netns, daemon::Config, scratch::Scratch};

use crate::{Outcome, check_eq};

/// Six bytes that reverse the video of whatever follows them.
const HOSTILE_IF: &str = "v\u{1b}[7mx";
/// A label must start with its interface's name; the rest clears the screen.
const HOSTILE_LABEL: &str = "v\u{1b}[7mx\n\u{1b}[2J";
/// How the outputs show them.
const SHOWN_IF: &str = "v\\u{1b}[7mx";
const SHOWN_LABEL: &str = "v\\u{1b}[7mx\\n\\u{1b}[2J";

/// Fails if `out` holds anything a terminal would act on, other than the
/// newlines that end its lines.
fn inert(what: &str, out: &str) -> Result<()> {
    let raw: Vec<char> = out
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    ensure!(raw.is_empty(), "{what} printed {raw:?} raw:\n{out:?}");
    Ok(())
}

fn stdout(what: &str, out: &Output) -> Result<String> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{what} ({}):\n{}", out.status, text.trim_end());
    inert(what, &text)?;
    inert(what, &String::from_utf8_lossy(&out.stderr))?;
    Ok(text)
}

pub fn run() -> Result<Outcome> {
    let bin = lab::daemon::binary()?;
    let ns = Netns::new("hostile")?;
    ns.ip(&["link", "set", "lo", "up"])?;
    ns.ip(&[
        "link",
        "add",
        HOSTILE_IF,
        "type",
        "veth",
        "peer",
        "name",
        "hostile-peer",
    ])?;
    for dev in [HOSTILE_IF, "hostile-peer"] {
        ns.ip(&["link", "set", dev, "up"])?;
    }
    ns.ip(&[
        "addr",
        "add",
        "10.77.0.1/24",
        "dev",
        HOSTILE_IF,
        "label",
        HOSTILE_LABEL,
    ])?;
    ns.ip(&["addr", "add", "10.77.0.2/24", "dev", HOSTILE_IF])?;

    let files = Scratch::new("hostile")?;
    let fair = files.write(
        "fair.toml",
        "[[alias]]\nname = \"gone\"\naddress = \"10.77.0.9\"\n\n\
         [[alias]]\nname = \"moved\"\naddress = \"10.77.0.2\"\ninterface = \"eth9\"\n",
    )?;
    let check = |config: &std::path::Path| -> Result<Output> {
        Ok(ns
            .exec(&bin)
            .arg("check")
            .arg("--config")
            .arg(config)
            .output()?)
    };
    let out = check(&fair)?;
    let report = stdout("check", &out)?;
    check_eq("check's exit status", &Some(1), &out.status.code())?;
    let expected = format!(
        "undocumented: 10.77.0.1/24 on {SHOWN_IF} (label {SHOWN_LABEL})\n\
         missing: alias \"gone\" (10.77.0.9) is not configured on this host\n\
         misplaced: alias \"moved\" (10.77.0.2) is expected on eth9 but is on {SHOWN_IF}\n"
    );
    check_eq("check's report", &expected, &report)?;

    // The same text through TOML escapes is refused where it stands.
    let evil = files.write(
        "evil.toml",
        "[[alias]]\nname = \"web\\u001b[2J\"\naddress = \"10.77.0.1\"\n",
    )?;
    let out = check(&evil)?;
    stdout("check on a hostile file", &out)?;
    check_eq(
        "exit status on a hostile file",
        &Some(2),
        &out.status.code(),
    )?;
    let error = String::from_utf8_lossy(&out.stderr);
    let place = format!("{}:2:8: the alias name \"web\\u{{1b}}[2J\"", evil.display());
    ensure!(error.contains(&place), "expected `{place}…` in:\n{error}");

    through_the_daemon(&ns, &bin, &fair)
}

/// `aliases`, `dump` and `top --once` against a daemon counting on the
/// hostile interface.
fn through_the_daemon(
    ns: &Netns,
    bin: &std::path::Path,
    config: &std::path::Path,
) -> Result<Outcome> {
    let bpffs = BpfDir::new("hostile")?;
    let daemon = Daemon::start(&Config {
        config: Some(config),
        ..Config::new(ns, &bpffs, HOSTILE_IF)
    })?;
    let pinned = |args: &[&std::ffi::OsStr]| -> Result<Output> {
        Ok(ns
            .exec(bin)
            .args(args)
            .arg("--bpffs")
            .arg(bpffs.path())
            .output()?)
    };
    let aliases = stdout(
        "aliases",
        &pinned(&["aliases".as_ref(), "--config".as_ref(), config.as_os_str()])?,
    )?;
    for address in ["10.77.0.1", "10.77.0.2", "10.77.0.9"] {
        ensure!(
            aliases
                .lines()
                .filter(|l| l.starts_with(&format!("{address} ")))
                .count()
                == 1,
            "aliases: expected one row for {address}"
        );
    }
    ensure!(
        aliases.contains(SHOWN_LABEL),
        "aliases does not show the label escaped"
    );
    stdout("dump", &pinned(&["dump".as_ref()])?)?;

    let top = ns
        .exec(bin)
        .args([
            "top",
            "--once",
            "--interval",
            "200ms",
            "--url",
            "http://127.0.0.1:9864",
        ])
        .output()?;
    let table = stdout("top --once", &top)?;
    check_eq("top's exit status", &Some(0), &top.status.code())?;
    ensure!(
        table
            .lines()
            .any(|l| l.starts_with("moved ") && l.contains(SHOWN_IF)),
        "top --once does not show the interface escaped"
    );
    daemon.stop()?;
    Ok(Outcome::Passed)
}
