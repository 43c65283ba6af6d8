//! A TCP port forward from the host's loopback into a lab namespace, so
//! that a browser on the host reaches a daemon serving on the namespace's
//! own loopback (`cargo xtask demo`).

use std::{
    io,
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::Arc,
    thread,
};

use anyhow::{Context as _, Result};

use crate::{Netns, netns};

/// Forwards for as long as the process runs; the listener thread holds no
/// lab resource, so the namespace can go away under it.
pub struct Forward {
    pub local: SocketAddr,
}

impl Forward {
    /// Listens on `local` (the host's namespace; port 0 picks one) and
    /// connects each client to `to` inside `ns`.
    pub fn start(local: SocketAddr, ns: &Netns, to: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(local)
            .or_else(|_| TcpListener::bind(SocketAddr::new(local.ip(), 0)))
            .with_context(|| format!("failed to listen on {local} for the port forward"))?;
        let local = listener.local_addr()?;
        let ns = Arc::new(ns.name().to_owned());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let ns = ns.clone();
                thread::spawn(move || {
                    if let Err(e) = relay(client, &ns, to) {
                        eprintln!("port forward to {to} in {ns}: {e:#}");
                    }
                });
            }
        });
        Ok(Self { local })
    }
}

/// Connects to `to` from inside the namespace named `ns` and copies both
/// ways until either side closes.
fn relay(client: TcpStream, ns: &str, to: SocketAddr) -> Result<()> {
    let upstream = netns::enter(ns, || TcpStream::connect(to))??;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}
