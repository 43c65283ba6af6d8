//! Reads a running daemon over HTTP: `/api/v1/aliases` for the rows and
//! `/metrics` for what is attached where (the JSON does not say, and the
//! daemon stays as it is), over HTTP or HTTPS, with basic auth when the
//! daemon's web config asks for it.

use std::{
    collections::HashMap, error::Error as StdError, io, net::IpAddr, path::PathBuf, sync::Arc,
    time::Duration,
};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{
    Request, Response, StatusCode, Uri,
    body::Incoming,
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use serde::{Deserialize, Deserializer, de};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

use crate::{inventory::State, serve::tls};

/// How long one request may take, connecting included. Longer than any
/// sane refresh interval is pointless: the next sample is due by then.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The largest answer read. A map at its default capacity is a few MiB of
/// JSON; this only stops a wrong `--url` from eating the memory.
const MAX_BODY: usize = 256 << 20;

/// Packets and bytes as the daemon's counters hold them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

/// One row of `/api/v1/aliases`, with the fields top shows.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Entry {
    pub address: IpAddr,
    #[serde(deserialize_with = "state")]
    pub state: State,
    pub interface: Option<String>,
    pub alias: Option<String>,
    pub owner: Option<String>,
    pub rx: Counts,
    pub tx: Counts,
}

fn state<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
    let text = String::deserialize(d)?;
    [
        State::Documented,
        State::Absent,
        State::Undocumented,
        State::Foreign,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| {
        de::Error::custom(format!(
            "unknown state `{text}`; is the daemon newer than this aliasstat?"
        ))
    })
}

#[derive(Deserialize)]
struct Document {
    aliases: Vec<Entry>,
}

/// One `aliasstat_program_attached` series: a program on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub interface: String,
    /// `tc` or `xdp`.
    pub hook: String,
    /// `receive` or `transmit`.
    pub direction: String,
    pub attached: bool,
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
        "no trusted CA certificates found on this system; give the CA of the daemon's certificate with --ca-file"
    )]
    NoSystemRoots,
    #[error(
        "TLS with {url} failed (is --url https:// for a daemon with TLS? does --ca-file hold the CA of its certificate?)"
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
    #[error("no answer from {url} within {}s", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("HTTP request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: hyper::Error,
    },
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
    #[error("{url} did not send an alias list; is --url an aliasstat daemon?")]
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

    pub async fn attachments(&self) -> Result<Vec<Attached>, ClientError> {
        let body = self.get("/metrics").await?;
        Ok(attachments(&String::from_utf8_lossy(&body)))
    }

    async fn get(&self, path: &str) -> Result<Bytes, ClientError> {
        let url = self.url() + path;
        match tokio::time::timeout(TIMEOUT, self.exchange(&url, path)).await {
            Ok(answer) => answer,
            Err(_) => Err(ClientError::Timeout { url }),
        }
    }

    async fn exchange(&self, url: &str, path: &str) -> Result<Bytes, ClientError> {
        let http = |source| ClientError::Http {
            url: url.to_owned(),
            source,
        };
        let stream = TcpStream::connect(&self.target.authority)
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_owned(),
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
                        url: url.to_owned(),
                        source,
                    })?;
                send(stream, request).await.map_err(http)?
            }
        };
        let status = response.status();
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
            return Err(ClientError::Status {
                url: url.to_owned(),
                status,
                body: text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
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

/// The `aliasstat_program_attached` series of a Prometheus text exposition.
pub fn attachments(metrics: &str) -> Vec<Attached> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("aliasstat_program_attached{")?;
            let (labels, value) = rest.rsplit_once('}')?;
            let mut labels = labels_of(labels)?;
            Some(Attached {
                interface: labels.remove("interface")?,
                hook: labels.remove("hook")?,
                direction: labels.remove("direction")?,
                attached: value.trim() == "1",
            })
        })
        .collect()
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}, or None when it is not that shape.
fn labels_of(text: &str) -> Option<HashMap<String, String>> {
    let mut labels = HashMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.trim().to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(labels)
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

    #[test]
    fn attachments_from_metrics() {
        let text = "\
# HELP aliasstat_program_attached 1 while ...
# TYPE aliasstat_program_attached gauge
aliasstat_program_attached{direction=\"receive\",hook=\"tc\",interface=\"eth0\"} 1
aliasstat_program_attached{direction=\"transmit\",hook=\"tc\",interface=\"we\\\"ird\"} 0
aliasstat_program_attachedness{direction=\"receive\"} 1
aliasstat_program_attached{direction=\"receive\",hook=\"tc\"} 1
aliasstat_build_info{version=\"0.1.0\"} 1
";
        assert_eq!(
            attachments(text),
            [
                Attached {
                    interface: "eth0".into(),
                    hook: "tc".into(),
                    direction: "receive".into(),
                    attached: true,
                },
                Attached {
                    interface: "we\"ird".into(),
                    hook: "tc".into(),
                    direction: "transmit".into(),
                    attached: false,
                },
            ]
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
                    rx: Counts {
                        packets: 2,
                        bytes: 200
                    },
                    tx: Counts {
                        packets: 1,
                        bytes: 60
                    },
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
