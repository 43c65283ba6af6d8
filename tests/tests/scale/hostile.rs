//! An alias file whose names, owners and purposes hold quotes,
//! backslashes, newlines and non-ASCII text: the exposition stays valid
//! (`promtool check metrics`) and each value is escaped as the text format
//! says.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Daemon, Veth,
    daemon::Config,
    harness::{Outcome, check_eq},
    http,
    link::Ipv6,
    prometheus::{PROMTOOL, promtool_check_metrics},
    scratch::Scratch,
};

/// TOML basic strings: `\"`, `\\` and `\n` are escapes there too.
const FILE: &str = r#"[[alias]]
name = "quote \" back \\ slash"
address = "10.98.0.2"
owner = "line one\nline two"
purpose = "Zürich ☃ 東京 \\n literally"
"#;

pub fn run() -> Result<Outcome> {
    if !std::path::Path::new(PROMTOOL).is_file() {
        return Ok(Outcome::Skipped(format!(
            "no promtool at {PROMTOOL}: install Debian's `prometheus` package (`cargo xtask setup` does)"
        )));
    }
    let veth = Veth::new(Ipv6::Off)?;
    let server: IpAddr = "10.98.0.2".parse()?;
    veth.server.add_addr(server, 24)?;
    veth.server.ns.ip(&["link", "set", "lo", "up"])?;
    let dir = Scratch::new("hostile")?;
    let config = dir.write("aliases.toml", FILE)?;
    let pins = BpfDir::new("srv")?;
    let listen: SocketAddr = "127.0.0.1:9864".parse()?;
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        listen: Some(listen),
        ..Config::new(&veth.server.ns, &pins, &veth.server.ifname)
    })?;
    let reply = http::get(&veth.server.ns, listen, "/metrics")?;
    let text = reply.text()?;
    let info: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("aliasstat_alias_info{"))
        .collect();
    check_eq(
        "the alias_info sample, escaped",
        &vec![
            r#"aliasstat_alias_info{address="10.98.0.2",alias="quote \" back \\ slash",owner="line one\nline two",purpose="Zürich ☃ 東京 \\n literally"} 1"#,
        ],
        &info,
    )?;
    let (code, said) = promtool_check_metrics(text)?;
    ensure!(code == 0, "promtool check metrics failed ({code}):\n{said}");
    daemon.stop()?;
    Ok(Outcome::Passed)
}
