//! One namespace pair with a documented alias, certificates, and the
//! daemon started with a web config; curl and traffic beside it.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, ensure};
use lab::{
    BpfDir, Count, Daemon, Netns, Veth,
    certs::Certs,
    daemon::{Config, Launch},
    frames::{UDP_HLEN, ip_header_len},
    http::{self, Response},
    ip,
    link::Ipv6,
    prometheus,
    scratch::Scratch,
    traffic,
};

pub const USER: &str = "prometheus";
pub const PASSWORD: &str = "correct horse battery staple";
/// The documented alias that the traffic goes to.
pub const ALIAS: &str = "10.75.0.3";
const CLIENT: &str = "10.75.0.1";
const PRIMARY: &str = "10.75.0.2";
/// Request payloads, each answered with [`REPLY`] bytes; counts differ per
/// direction so that a swap cannot pass.
const REQUESTS: [usize; 3] = [100, 200, 1300];
const REPLY: usize = 50;

pub struct Lab {
    pub certs: Certs,
    pub listen: SocketAddr,
    /// `PASSWORD` in a file, for Prometheus's `password_file` and top.
    pub password_file: PathBuf,
    /// The bcrypt hash of `PASSWORD` (cost 10, as `htpasswd -B` makes).
    pub hash: String,
    aliases: PathBuf,
    dir: Scratch,
    pins: BpfDir,
    pub veth: Veth,
}

/// What curl got: an answer, or its exit code and message.
#[derive(Debug)]
pub enum Curl {
    Answered(Response),
    Failed { code: i32, stderr: String },
}

impl Lab {
    pub fn new() -> Result<Self> {
        let veth = Veth::new(Ipv6::Off)?;
        veth.client.add_addr(ip(CLIENT), 24)?;
        veth.server.add_addr(ip(PRIMARY), 24)?;
        veth.server.add_addr(ip(ALIAS), 24)?;
        veth.know_each_other(&[ip(CLIENT)], &[ip(PRIMARY), ip(ALIAS)])?;
        veth.server.ns.ip(&["link", "set", "lo", "up"])?;
        let dir = Scratch::new("tls")?;
        let aliases = dir.write(
            "aliases.toml",
            &format!("[[alias]]\nname = \"web\"\naddress = \"{ALIAS}\"\nowner = \"web-team\"\n"),
        )?;
        let listen = SocketAddr::from(([127, 0, 0, 1], prometheus::free_port(&veth.server.ns)?));
        Ok(Self {
            certs: Certs::new()?,
            listen,
            password_file: dir.write("password", &format!("{PASSWORD}\n"))?,
            hash: bcrypt::hash(PASSWORD, 10)?,
            aliases,
            dir,
            pins: BpfDir::new("tls")?,
            veth,
        })
    }

    pub fn ns(&self) -> &Netns {
        &self.veth.server.ns
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.listen)
    }

    /// TLS with the lab's server certificate, `extra` under
    /// `tls_server_config`, and basic auth for [`USER`].
    pub fn web_config(&self, extra: &str) -> String {
        self.certs.web_config(extra, USER, &self.hash)
    }

    /// Writes `text` as the web config; the same path every time, so a
    /// SIGHUP re-reads what was written last.
    pub fn write_web_config(&self, text: &str) -> Result<PathBuf> {
        self.dir.write("web.yml", text)
    }

    /// `aliasstat run --web.config.file FILE` on the server's interface.
    pub fn start(&self, web_config: &Path) -> Result<Daemon> {
        Daemon::start_with(
            &Config {
                config: Some(&self.aliases),
                listen: Some(self.listen),
                ..Config::new(self.ns(), &self.pins, &self.veth.server.ifname)
            },
            &Launch {
                args: vec!["--web.config.file".into(), web_config.into()],
                ..Launch::default()
            },
        )
    }

    /// curl `url`+`path` from the server's namespace, trusting the lab CA.
    pub fn curl(&self, url: &str, path: &str, args: &[&str]) -> Result<Curl> {
        let mut cmd = self.ns().exec("curl");
        cmd.args(["-sS", "-i", "--max-time", "10", "--cacert"])
            .arg(&self.certs.ca)
            .args(args)
            .arg(format!("{url}{path}"));
        let out = run(&mut cmd)?;
        Ok(match out.status.code() {
            Some(0) => Curl::Answered(http::parse(&out.stdout, false).with_context(|| {
                format!("curl printed {:?}", String::from_utf8_lossy(&out.stdout))
            })?),
            code => Curl::Failed {
                code: code.unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            },
        })
    }

    /// curl with [`USER`]'s credentials; fails unless the answer is 200.
    pub fn get(&self, path: &str) -> Result<Response> {
        let credentials = format!("{USER}:{PASSWORD}");
        match self.curl(&self.url(), path, &["-u", &credentials])? {
            Curl::Answered(r) if r.status == 200 => Ok(r),
            other => anyhow::bail!("GET {path} with credentials: {other:?}"),
        }
    }

    /// UDP requests from the client to [`ALIAS`], each answered; returns
    /// what the server's interface received and sent for it.
    pub fn send(&self) -> Result<(Count, Count)> {
        let client = traffic::udp_socket(&self.veth.client.ns, SocketAddr::new(ip(CLIENT), 40000))?;
        let server = traffic::udp_socket(self.ns(), SocketAddr::new(ip(ALIAS), 5300))?;
        let (mut rx, mut tx) = (Count::default(), Count::default());
        let datagram = |payload| Count::one((ip_header_len(ip(ALIAS)) + UDP_HLEN + payload) as u64);
        for request in REQUESTS {
            traffic::exchange(&client, &server, request, REPLY)?;
            rx += datagram(request);
            tx += datagram(REPLY);
        }
        Ok((rx, tx))
    }
}

/// Runs `cmd` and returns its output whatever its exit status.
pub fn run(cmd: &mut Command) -> Result<std::process::Output> {
    let shown = lab::cmd::show(cmd);
    cmd.output()
        .with_context(|| format!("failed to start `{shown}`"))
}

/// Fails unless curl got `status`.
pub fn expect_status(what: &str, got: &Curl, status: u16) -> Result<()> {
    ensure!(
        matches!(got, Curl::Answered(r) if r.status == status),
        "{what}: expected {status}, got {got:?}"
    );
    Ok(())
}
