//! Reads a running daemon's JSON API: `/api/v1/aliases` for the rows and
//! `/api/v1/status` for what is attached where, over HTTP or HTTPS, with
//! basic auth when the daemon's web config asks for it.

use std::{error::Error as StdError, io, net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use base64::Engine as _;
use bytes::Bytes;
use common::Counters;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{
    Request, Response, StatusCode, Uri,
    body::Incoming,
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use serde::Deserialize;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

pub use crate::serve::api::Attached;
use crate::{
    inventory::State,
    peers::view::AddressPeers,
    serve::{
        api::{OFF_HEADER, Status},
        tls,
    },
};

/// How long one request may take, connecting included. Longer than any
/// sane refresh interval is pointless: the next sample is due by then.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The largest answer read. A map at its default capacity is a few MiB of
/// JSON; this only stops a wrong `--url` from eating the memory.
const MAX_BODY: usize = 256 << 20;

/// One row of `/api/v1/aliases`, with the fields top shows.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Entry {
    pub address: IpAddr,
    pub state: State,
    pub interface: Option<String>,
    pub alias: Option<String>,
    pub owner: Option<String>,
    pub rx: Counters,
    pub tx: Counters,
}

/// The same fields of a row read in this process (the web page's rate
/// history), so both take their rates with the same arithmetic.
impl From<&crate::inventory::Row> for Entry {
    fn from(row: &crate::inventory::Row) -> Self {
        Self {
            address: row.address,
            state: row.state,
            interface: row.interface.clone(),
            alias: row.alias.clone(),
            owner: row.owner.clone(),
            rx: row.rx,
            tx: row.tx,
        }
    }
}

#[derive(Deserialize)]
struct Document {
    aliases: Vec<Entry>,
}

/// What the daemon's web config may ask of a client.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// User and password for basic auth.
    pub credentials: Option<(String, String)>,
    /// CAs an https:// daemon must chain to; the system's when `None`.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "`{url}` is not an http:// or https:// URL such as {}; give the --listen address of `aliasstat run`",
        super::DEFAULT_URL
    )]
    Url { url: String },
    #[error("--ca-file: {message}")]
    CaFile { message: String },
    #[error(
        "no trusted CA certificates found on this system; give the CA of the server's certificate with --ca-file"
    )]
    NoSystemRoots,
    #[error(
        "TLS with {url} failed (does it serve https:// at that port? does --ca-file hold the CA of its certificate?)"
    )]
    Tls {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot connect to {url} (start `aliasstat run`, or point --url at its --listen)")]
    Connect {
        url: String,
        #[source]
        source: io::Error,
    },
    #[error("no answer from {url} within {seconds}s")]
    Timeout { url: String, seconds: u64 },
    #[error("HTTP request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: hyper::Error,
    },
    /// A path the daemon serves, with the feature behind it turned off
    /// (see [`crate::serve::api::OFF_HEADER`]).
    #[error("{url} answered 404 Not Found: {body}")]
    Off { url: String, body: String },
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("failed to read the answer of {url}")]
    Body {
        url: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error(
        "{url} did not send the JSON aliasstat serves; is --url an aliasstat daemon of this version?"
    )]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A daemon's HTTP endpoint. Requests are one per connection: a sample a
/// second does not need keep-alive, and a restarted daemon is then simply
/// the next connection.
#[derive(Clone)]
pub struct Client {
    target: Target,
    /// For https://: the connector and the name the certificate must have.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// `Basic …`, marked sensitive so that no debug output shows it.
    authorization: Option<HeaderValue>,
}

/// The parts of a `--url`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    https: bool,
    /// `host:port`, the way it is connected to and sent as `Host`.
    authority: String,
    /// The URL's path without its trailing slash, for a daemon behind a
    /// reverse proxy under a prefix.
    prefix: String,
    host: String,
}

impl Target {
    /// `http[s]://host[:port][/prefix]`; the scheme may be left out (http).
    fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::Url {
            url: url.to_owned(),
        };
        let full = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = full.parse().map_err(|_| bad())?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad()),
        };
        if uri.query().is_some() {
            return Err(bad());
        }
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            https,
            authority: format!("{host}:{port}"),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            host: host.to_owned(),
        })
    }
}

impl Client {
    /// `url` is `http[s]://host[:port][/prefix]`; the scheme may be left
    /// out (http).
    pub fn new(url: &str, access: &Access) -> Result<Self, ClientError> {
        let target = Target::parse(url)?;
        let tls = if target.https {
            let name = ServerName::try_from(target.host.trim_matches(['[', ']']).to_owned())
                .map_err(|_| ClientError::Url {
                    url: url.to_owned(),
                })?;
            Some((connector(access.ca_file.as_deref())?, name))
        } else {
            None
        };
        let authorization = access.credentials.as_ref().map(|(user, password)| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .expect("base64 is a valid header value");
            value.set_sensitive(true);
            value
        });
        Ok(Self {
            target,
            tls,
            authorization,
        })
    }

    /// The host part of the URL, IPv6 brackets included.
    pub fn host(&self) -> &str {
        &self.target.host
    }

    /// The base URL, as messages show it.
    pub fn url(&self) -> String {
        let scheme = if self.target.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.target.authority, self.target.prefix)
    }

    pub async fn aliases(&self) -> Result<Vec<Entry>, ClientError> {
        let path = "/api/v1/aliases";
        let body = self.get(path).await?;
        serde_json::from_slice::<Document>(&body)
            .map(|d| d.aliases)
            .map_err(|source| ClientError::Json {
                url: self.url() + path,
                source,
            })
    }

    /// `/api/v1/peers`, of one address or alias name, or of all.
    pub async fn peers(&self, wanted: Option<&str>) -> Result<Vec<AddressPeers>, ClientError> {
        let mut path = String::from("/api/v1/peers");
        if let Some(wanted) = wanted {
            path.push_str("?address=");
            for b in wanted.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    path.push(char::from(b));
                } else {
                    path.push_str(&format!("%{b:02X}"));
                }
            }
        }
        let body = self.get(&path).await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Json {
            url: self.url() + &path,
            source,
        })
    }

    pub async fn attachments(&self) -> Result<Vec<Attached>, ClientError> {
        let path = "/api/v1/status";
        let body = self.get(path).await?;
        serde_json::from_slice::<Status>(&body)
            .map(|s| s.attachments)
            .map_err(|source| ClientError::Json {
                url: self.url() + path,
                source,
            })
    }

    /// `/api/v1/services`: the address × service matrix.
    pub async fn services(&self) -> Result<crate::services::ServicesDoc, ClientError> {
        let path = "/api/v1/services";
        let body = self.get(path).await?;
        serde_json::from_slice(&body).map_err(|source| ClientError::Json {
            url: self.url() + path,
            source,
        })
    }

    async fn get(&self, path: &str) -> Result<Bytes, ClientError> {
        self.get_within(path, TIMEOUT).await
    }

    /// GET `path` (with its query string) under the URL, the answer's body
    /// if it is 200 OK: for other JSON APIs than the daemon's, such as
    /// Prometheus's for `aliasstat report --prometheus`.
    pub async fn get_within(&self, path: &str, timeout: Duration) -> Result<Bytes, ClientError> {
        let url = self.url() + path;
        match tokio::time::timeout(timeout, self.exchange(&url, path)).await {
            Ok(answer) => answer,
            Err(_) => Err(ClientError::Timeout {
                url,
                seconds: timeout.as_secs(),
            }),
        }
    }

    async fn exchange(&self, url: &str, path: &str) -> Result<Bytes, ClientError> {
        let http = |source| ClientError::Http {
            url: url.to_owned(),
            source,
        };
        // Connecting and the handshake are about the server, not the
        // path, which for a Prometheus query is a page of encoded PromQL.
        let stream = TcpStream::connect(&self.target.authority)
            .await
            .map_err(|source| ClientError::Connect {
                url: self.url(),
                source,
            })?;
        let mut request = Request::get(format!("{}{path}", self.target.prefix))
            .header(header::HOST, &self.target.authority)
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .expect("a path from a parsed URI and fixed headers are valid");
        if let Some(value) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.clone());
        }
        let response = match &self.tls {
            None => send(stream, request).await.map_err(http)?,
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|source| ClientError::Tls {
                        url: self.url(),
                        source,
                    })?;
                send(stream, request).await.map_err(http)?
            }
        };
        let status = response.status();
        let off = status == StatusCode::NOT_FOUND && response.headers().contains_key(OFF_HEADER);
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|source| ClientError::Body {
                url: url.to_owned(),
                source,
            })?
            .to_bytes();
        if status != StatusCode::OK {
            // The daemon's error bodies are one short line of text.
            let text = String::from_utf8_lossy(&body);
            let body = text
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let url = url.to_owned();
            return Err(if off {
                ClientError::Off { url, body }
            } else {
                ClientError::Status { url, status, body }
            });
        }
        Ok(body)
    }
}

/// Sends `request` as the only one on the connection `io`.
async fn send(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    request: Request<Empty<Bytes>>,
) -> Result<Response<Incoming>, hyper::Error> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // The connection task moves the bytes; its errors also fail the
    // request, which is where they are reported.
    tokio::spawn(connection);
    sender.send_request(request).await
}

/// TLS trusting the CAs in `ca_file`, or the system's.
fn connector(ca_file: Option<&std::path::Path>) -> Result<TlsConnector, ClientError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in tls::read_certs(path).map_err(|message| ClientError::CaFile { message })? {
                roots.add(cert).map_err(|e| ClientError::CaFile {
                    message: format!("`{}` holds an unusable CA certificate: {e}", path.display()),
                })?;
            }
        }
        None => {
            let (added, _ignored) =
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if added == 0 {
                return Err(ClientError::NoSystemRoots);
            }
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    #[test]
    fn urls() {
        let cases = [
            ("http://127.0.0.1:9864", Some((false, "127.0.0.1:9864", ""))),
            ("127.0.0.1:9864", Some((false, "127.0.0.1:9864", ""))),
            ("http://[::1]:9864/", Some((false, "[::1]:9864", ""))),
            (
                "http://stats.example/aliasstat/",
                Some((false, "stats.example:80", "/aliasstat")),
            ),
            ("https://127.0.0.1:9864", Some((true, "127.0.0.1:9864", ""))),
            (
                "https://stats.example/a",
                Some((true, "stats.example:443", "/a")),
            ),
            ("ftp://127.0.0.1:9864", None),
            ("http://127.0.0.1:9864/?x=1", None),
            ("http://", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            let got = Target::parse(url).ok();
            let got = got
                .as_ref()
                .map(|t| (t.https, t.authority.as_str(), t.prefix.as_str()));
            assert_eq!(got, want, "{url}");
        }
        let access = Access::default();
        assert_eq!(
            Client::new("http://[::1]:9864", &access).unwrap().host(),
            "[::1]"
        );
    }

    /// Serves one connection with `answer` and returns the client for it.
    fn serve_once(answer: String) -> Client {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = vec![0; 4096];
            let _ = conn.read(&mut head).unwrap();
            conn.write_all(answer.as_bytes()).unwrap();
        });
        Client::new(&format!("http://{addr}"), &Access::default()).unwrap()
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn reads_the_alias_list() {
        runtime().block_on(async {
            let body = r#"{"aliases":[{"address":"192.0.2.1","state":"documented","interface":"eth0","label":null,"prefix_len":24,"scope":"universe","flags":[],"alias":"web","owner":"team","purpose":"","rx":{"packets":2,"bytes":200},"tx":{"packets":1,"bytes":60},"seen_on":[]}]}"#;
            let client = serve_once(ok(body));
            let rows = client.aliases().await.unwrap();
            assert_eq!(
                rows,
                [Entry {
                    address: "192.0.2.1".parse().unwrap(),
                    state: State::Documented,
                    interface: Some("eth0".into()),
                    alias: Some("web".into()),
                    owner: Some("team".into()),
                    rx: Counters::new(2, 200),
                    tx: Counters::new(1, 60),
                }]
            );
        });
    }

    #[test]
    fn errors_say_what_went_wrong() {
        runtime().block_on(async {
            let client = serve_once(
                "HTTP/1.1 404 Not Found\r\ncontent-length: 17\r\n\r\nnot found; see /\n".into(),
            );
            let e = client.aliases().await.unwrap_err().to_string();
            assert!(
                e.ends_with("answered 404 Not Found: not found; see /"),
                "{e}"
            );

            // The same status for a feature turned off is told apart by
            // the daemon's header.
            let client = serve_once(format!(
                "HTTP/1.1 404 Not Found\r\n{OFF_HEADER}: services\r\ncontent-length: 21\r\n\r\nper-service counting\n"
            ));
            let e = client.services().await.unwrap_err();
            assert!(
                matches!(&e, ClientError::Off { body, .. } if body == "per-service counting"),
                "{e}"
            );

            let client = serve_once(ok(r#"{"aliases":[{"address":"x","state":"?"}]}"#));
            let e = client.aliases().await.unwrap_err();
            assert!(matches!(e, ClientError::Json { .. }), "{e}");

            // A port that was just free: nothing listens there.
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = free.local_addr().unwrap();
            drop(free);
            let e = Client::new(&format!("http://{addr}"), &Access::default())
                .unwrap()
                .aliases()
                .await
                .unwrap_err();
            assert!(matches!(e, ClientError::Connect { .. }), "{e}");
        });
    }
}
