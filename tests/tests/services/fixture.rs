//! A server namespace with a few aliases, a daemon counting services in
//! it, and the units its peers run in.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use aliasstat::services::{AddressServices, ServicesDoc};
use anyhow::{Context, Result};
use lab::{
    BpfDir, Daemon, Veth,
    cgroups::{self, CgroupLab},
    daemon::{Config, Launch},
    http,
    link::Ipv6,
};

pub const PEER: &str = env!("CARGO_BIN_EXE_svcpeer");

/// A veth whose server end has `primary` first and the aliases after it.
pub struct Lab {
    pub veth: Veth,
    pub cgroups: CgroupLab,
    pub client: IpAddr,
    pub primary: IpAddr,
    pub pins: BpfDir,
}

impl Lab {
    /// `net` is the first three octets, e.g. "10.81.0"; the client is .1,
    /// the server's primary .2, then `aliases` (last octets) in order.
    pub fn new(net: &str, aliases: &[u8]) -> Result<Self> {
        cgroups::probe()?;
        let veth = Veth::new(Ipv6::Off)?;
        let client: IpAddr = format!("{net}.1").parse()?;
        let primary: IpAddr = format!("{net}.2").parse()?;
        veth.client.add_addr(client, 24)?;
        veth.server.add_addr(primary, 24)?;
        let mut server = vec![primary];
        for last in aliases {
            let a: IpAddr = format!("{net}.{last}").parse()?;
            veth.server.add_addr(a, 24)?;
            server.push(a);
        }
        veth.know_each_other(&[client], &server)?;
        // The API is read over the server's loopback, which the daemon does
        // not count on, so reading it adds nothing to what is checked.
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        Ok(Self {
            veth,
            cgroups: CgroupLab::new()?,
            client,
            primary,
            pins: BpfDir::new("srv")?,
        })
    }

    /// The daemon in the server namespace, counting services under the
    /// lab's cgroup mount.
    pub fn daemon(&self) -> Result<Daemon> {
        self.start(None)
    }

    /// [`Lab::daemon`] with the alias file `aliases`.
    pub fn daemon_with(&self, aliases: &Path) -> Result<Daemon> {
        self.start(Some(aliases))
    }

    fn start(&self, aliases: Option<&Path>) -> Result<Daemon> {
        let launch = Launch {
            args: vec!["--cgroup-root".into(), self.cgroups.root().into()],
            ..Launch::default()
        };
        let mut config = Config::new(&self.veth.server.ns, &self.pins, &self.veth.server.ifname);
        config.config = aliases;
        Daemon::start_with(&config, &launch)
    }

    pub fn unit(&mut self, name: &str) -> Result<PathBuf> {
        self.cgroups.unit(name)
    }
}

/// `/api/v1/services` of the daemon in `veth`'s server namespace.
pub fn services(veth: &Veth) -> Result<ServicesDoc> {
    let resp = http::get(
        &veth.server.ns,
        "127.0.0.1:9864".parse()?,
        "/api/v1/services",
    )?;
    anyhow::ensure!(
        resp.status == 200,
        "status {}: {}",
        resp.status,
        resp.text()?
    );
    serde_json::from_str(resp.text()?).context("the /api/v1/services document")
}

/// `[rx_packets, rx_bytes, tx_packets, tx_bytes]` of `unit` on `address`.
pub fn counts(doc: &ServicesDoc, address: IpAddr, unit: &str) -> Option<[u64; 4]> {
    address_of(doc, address)?
        .services
        .iter()
        .find(|s| s.unit.as_deref() == Some(unit))
        .map(|s| [s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes])
}

pub fn address_of(doc: &ServicesDoc, address: IpAddr) -> Option<&AddressServices> {
    doc.addresses.iter().find(|a| a.address == address)
}

/// The units listed for `address`, sorted.
pub fn units(doc: &ServicesDoc, address: IpAddr) -> Vec<String> {
    let mut units: Vec<String> = address_of(doc, address)
        .map(|a| a.services.iter().map(|s| s.label().to_owned()).collect())
        .unwrap_or_default();
    units.sort();
    units
}
