//! `aliasstat aliases --json` (or `/api/v1/aliases`) parsed, and
//! `aliasstat check` with its exit status.

use std::{net::IpAddr, path::Path, process::Command};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::{BpfDir, Count, Netns, cmd, daemon::binary};

/// The state `aliases` gives an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Documented,
    Absent,
    Undocumented,
    Foreign,
}

/// Packets and bytes in one direction, as the JSON spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl From<Traffic> for Count {
    fn from(t: Traffic) -> Self {
        Self::new(t.packets, t.bytes)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenOn {
    pub interface: String,
    pub rx: Traffic,
    pub tx: Traffic,
}

/// One address. Unknown fields are errors, as in [`crate::Snapshot`]: the
/// document is a contract that scripts read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub address: IpAddr,
    pub state: State,
    pub interface: Option<String>,
    pub label: Option<String>,
    pub prefix_len: Option<u8>,
    pub scope: Option<String>,
    pub flags: Vec<String>,
    pub alias: Option<String>,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub rx: Traffic,
    pub tx: Traffic,
    pub seen_on: Vec<SeenOn>,
}

impl Row {
    pub fn rx(&self) -> Count {
        self.rx.into()
    }

    pub fn tx(&self) -> Count {
        self.tx.into()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aliases {
    pub aliases: Vec<Row>,
}

impl Aliases {
    pub fn parse(json: &str) -> Result<Self> {
        serde_json::from_str(json).with_context(|| format!("unexpected aliases JSON: {json}"))
    }

    /// The row of `address`; an error that shows every row when missing.
    pub fn row(&self, address: IpAddr) -> Result<&Row> {
        match self.aliases.iter().find(|r| r.address == address) {
            Some(row) => Ok(row),
            None => bail!("no row for {address} in {:#?}", self.aliases),
        }
    }
}

/// `aliasstat aliases --json` inside `ns`, reading the maps in `bpffs` and
/// the alias file `config` itself (not the daemon's copy of it).
pub fn aliases(ns: &Netns, bpffs: &BpfDir, config: &Path) -> Result<Aliases> {
    let json = cmd::run(
        ns.exec(binary()?)
            .args(["aliases", "--json", "--bpffs"])
            .arg(bpffs.path())
            .arg("--config")
            .arg(config),
    )?;
    Aliases::parse(&json)
}

/// What `aliasstat check` printed, and its exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `aliasstat check --config FILE`, inside `ns` when given (it compares the
/// file with that namespace's addresses), else here.
pub fn check(ns: Option<&Netns>, config: &Path) -> Result<Checked> {
    let mut cmd = match ns {
        Some(ns) => ns.exec(binary()?),
        None => Command::new(binary()?),
    };
    cmd.arg("check").arg("--config").arg(config);
    // Without RUST_LOG noise: the output itself is what is tested.
    cmd.env_remove("RUST_LOG");
    let shown = cmd::show(&cmd);
    let out = cmd
        .output()
        .with_context(|| format!("failed to start `{shown}`"))?;
    let Some(code) = out.status.code() else {
        bail!("`{shown}` was killed: {}", out.status);
    };
    Ok(Checked {
        code,
        stdout: String::from_utf8(out.stdout).context("check printed invalid UTF-8")?,
        stderr: String::from_utf8(out.stderr).context("check printed invalid UTF-8")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let json = r#"{"aliases":[{"address":"10.0.0.5","state":"documented","interface":"vb","label":"vb:1","prefix_len":24,"scope":"global","flags":["secondary","permanent"],"alias":"web","owner":"ops","purpose":"tls","rx":{"packets":3,"bytes":426},"tx":{"packets":1,"bytes":100},"seen_on":[{"interface":"vb","rx":{"packets":3,"bytes":426},"tx":{"packets":1,"bytes":100}}]},{"address":"10.0.0.9","state":"absent","interface":null,"label":null,"prefix_len":null,"scope":null,"flags":[],"alias":"vip","owner":"","purpose":"","rx":{"packets":0,"bytes":0},"tx":{"packets":0,"bytes":0},"seen_on":[]}]}"#;
        let a = Aliases::parse(json).unwrap();
        let web = a.row("10.0.0.5".parse().unwrap()).unwrap();
        assert_eq!(web.state, State::Documented);
        assert_eq!(web.rx(), Count::new(3, 426));
        assert_eq!(web.label.as_deref(), Some("vb:1"));
        assert_eq!(
            a.row("10.0.0.9".parse().unwrap()).unwrap().state,
            State::Absent
        );
        assert!(a.row("10.0.0.1".parse().unwrap()).is_err());
        assert!(Aliases::parse(r#"{"aliases":[],"extra":1}"#).is_err());
    }
}
