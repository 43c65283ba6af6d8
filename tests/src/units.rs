//! What the services and top suites test per-service counting with: a
//! server namespace with a few aliases, a daemon counting services in it,
//! and the units (see [`crate::cgroups`]) its peers run in.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::{
    BpfDir, Daemon, Veth,
    cgroups::{self, CgroupLab},
    daemon::{Config, Launch},
    link::Ipv6,
};

/// The `svcpeer` binary for [`cgroups::Peer::start`]. A macro, so that
/// `env!` is read where only a suite's build sets it.
#[macro_export]
macro_rules! svcpeer {
    () => {
        env!("CARGO_BIN_EXE_svcpeer")
    };
}

/// A veth whose server end has `primary` first and the aliases after it.
pub struct UnitLab {
    pub veth: Veth,
    pub cgroups: CgroupLab,
    pub client: IpAddr,
    pub primary: IpAddr,
    pub pins: BpfDir,
}

impl UnitLab {
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

    /// [`UnitLab::daemon`] with the alias file `aliases`.
    pub fn daemon_with(&self, aliases: &Path) -> Result<Daemon> {
        self.start(Some(aliases))
    }

    /// The daemon in the server namespace, with `--services off`.
    pub fn daemon_services_off(&self) -> Result<Daemon> {
        let launch = Launch {
            args: vec!["--services".into(), "off".into()],
            ..Launch::default()
        };
        self.launch(None, &launch)
    }

    fn start(&self, aliases: Option<&Path>) -> Result<Daemon> {
        let launch = Launch {
            args: vec!["--cgroup-root".into(), self.cgroups.root().into()],
            ..Launch::default()
        };
        self.launch(aliases, &launch)
    }

    fn launch(&self, aliases: Option<&Path>, launch: &Launch) -> Result<Daemon> {
        let mut config = Config::new(&self.veth.server.ns, &self.pins, &self.veth.server.ifname);
        config.config = aliases;
        Daemon::start_with(&config, launch)
    }

    pub fn unit(&mut self, name: &str) -> Result<PathBuf> {
        self.cgroups.unit(name)
    }
}
