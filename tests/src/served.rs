//! What most root tests set up before their daemon: an alias file of the
//! test's own, a pin directory, and the address the daemon serves HTTP on.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Result;

use crate::{BpfDir, Daemon, Host, daemon::Config, prometheus, scratch::Scratch};

/// Where the daemon serves HTTP.
#[derive(Clone, Copy, Debug)]
pub enum Listen {
    /// Its default, for tests that never ask it anything over HTTP.
    Default,
    /// A free port on the host namespace's loopback (brought up for it),
    /// which the daemon does not count on: asking adds nothing to the
    /// counts under test.
    Loopback,
    At(SocketAddr),
}

/// `aliases.toml` in a scratch directory, a pin directory, and a listen
/// address, for a daemon on one host.
pub struct Served {
    pub dir: Scratch,
    pub config: PathBuf,
    pub pins: BpfDir,
    listen: Option<SocketAddr>,
}

impl Served {
    /// Writes `aliases` for a daemon on `host`; `role` names the scratch
    /// and pin directories.
    pub fn new(role: &str, host: &Host, aliases: &str, listen: Listen) -> Result<Self> {
        let dir = Scratch::new(role)?;
        let config = dir.write("aliases.toml", aliases)?;
        let pins = BpfDir::new(role)?;
        let listen = match listen {
            Listen::Default => None,
            Listen::Loopback => {
                host.ns.ip(&["link", "set", "lo", "up"])?;
                let port = prometheus::free_port(&host.ns)?;
                Some(SocketAddr::from(([127, 0, 0, 1], port)))
            }
            Listen::At(at) => Some(at),
        };
        Ok(Self {
            dir,
            config,
            pins,
            listen,
        })
    }

    /// The daemon's configuration: TC on `host`'s lab interface.
    pub fn daemon_config<'a>(&'a self, host: &'a Host) -> Config<'a> {
        Config {
            config: Some(&self.config),
            listen: self.listen,
            ..Config::new(&host.ns, &self.pins, &host.ifname)
        }
    }

    pub fn start(&self, host: &Host) -> Result<Daemon> {
        Daemon::start(&self.daemon_config(host))
    }

    /// Where the daemon serves; panics for [`Listen::Default`], which a
    /// test that asks should not have chosen.
    pub fn listen(&self) -> SocketAddr {
        self.listen.expect("the daemon was given a listen address")
    }

    /// Replaces the alias file, for a SIGHUP to pick up.
    pub fn rewrite(&self, aliases: &str) -> Result<()> {
        self.dir.write("aliases.toml", aliases)?;
        Ok(())
    }
}
