//! The page at 10k addresses: the scale suite's veth with ten thousand
//! aliases, and the time from navigation to a first screen of rows. The
//! figure is printed, not asserted; what is asserted is that one refresh
//! stays one bounded page of JSON.

use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use lab::{
    BpfDir, Daemon, Veth, daemon::Config, harness::Outcome, http, link::Ipv6, poll::Every,
    scratch::Scratch, stress,
};

use crate::browser::{self, Chromium};

const ADDRESSES: usize = 10_000;
/// The page's first screen: its default page size.
const FIRST_SCREEN: usize = 50;

fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 99, (i / 250) as u8, 1 + (i % 250) as u8))
}

pub fn run() -> Result<Outcome> {
    if let Some(reason) = browser::missing() {
        return Ok(Outcome::Skipped(reason));
    }
    let veth = Veth::new(Ipv6::Off)?;
    let (client, server): (IpAddr, IpAddr) = ("10.98.0.1".parse()?, "10.98.0.2".parse()?);
    stress::alias_veth(
        &veth,
        (client, server),
        "10.99.0.0/16",
        (0..ADDRESSES).map(address),
    )?;
    let iface = veth.server.ifname.clone();
    let mut file = String::new();
    for i in 0..ADDRESSES {
        write!(
            file,
            "[[alias]]\nname = \"vhost-{i}\"\naddress = \"{}\"\nowner = \"customer-{i}\"\n",
            address(i)
        )?;
    }
    let dir = Scratch::new("web10k")?;
    let config = dir.write("aliases.toml", &file)?;
    let pins = BpfDir::new("web10k")?;
    let listen: SocketAddr = "127.0.0.1:9864".parse()?;
    let daemon = Daemon::start(&Config {
        config: Some(&config),
        listen: Some(listen),
        map_capacity: Some(2 * ADDRESSES as u32),
        ..Config::new(&veth.server.ns, &pins, &iface)
    })?;
    // The daemon's first reading of every address, before the clock starts.
    let ns = &veth.server.ns;
    let first = Every(Duration::from_millis(200)).until(
        "the daemon's first reading of 10k addresses",
        Duration::from_secs(60),
        || Ok(http::get(ns, listen, "/api/v1/rates")?.body),
        |body| {
            serde_json::from_slice::<serde_json::Value>(body)
                .is_ok_and(|v| v["total"].as_u64() >= Some(ADDRESSES as u64))
        },
    )?;
    println!(
        "  one page of /api/v1/rates at {ADDRESSES} addresses: {} bytes",
        first.len()
    );
    ensure!(
        first.len() < 256 << 10,
        "a page of 50 rows is {} bytes: not bounded",
        first.len()
    );

    let page = Chromium::start(ns)?;
    let started = Instant::now();
    page.open(&format!("http://{listen}/"))?;
    let count: String = page.wait(
        "the first screen",
        r#"document.querySelectorAll('#rows tr').length === 50 ? document.getElementById("count").textContent : null"#,
        |c: &Option<String>| c.is_some(),
    )?
    .unwrap_or_default();
    let took = started.elapsed();
    println!(
        "  first screen of {FIRST_SCREEN} rows at {ADDRESSES} addresses in {took:?} (reported, not asserted): {count}"
    );
    // The aliases, the veth's own address and whatever lo holds.
    let listed: Option<usize> = count
        .strip_prefix("1–50 of ")
        .and_then(|rest| rest.split(' ').next()?.parse().ok());
    ensure!(listed >= Some(ADDRESSES), "count line: {count}");
    drop(page);
    daemon.stop()?;
    Ok(Outcome::Passed)
}
