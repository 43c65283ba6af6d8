//! Reads a running daemon's JSON API over HTTP: `/api/v1/aliases` for the
//! rows and `/api/v1/status` for what is attached where.

use std::{error::Error as StdError, io, net::IpAddr, time::Duration};

use bytes::Bytes;
use common::Counters;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;

pub use crate::serve::api::Attached;
use crate::{inventory::State, serve::api::Status};

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

#[derive(Deserialize)]
struct Document {
    aliases: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "`{url}` is not an http:// URL such as {}; give the --listen address of `aliasstat run`",
        super::DEFAULT_URL
    )]
    Url { url: String },
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
#[derive(Clone, Debug)]
pub struct Client {
    /// `host:port`, the way it is connected to and sent as `Host`.
    authority: String,
    /// The URL's path without its trailing slash, for a daemon behind a
    /// reverse proxy under a prefix.
    prefix: String,
    host: String,
}

impl Client {
    /// `url` is `http://host[:port][/prefix]`; the scheme may be left out.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::Url {
            url: url.to_owned(),
        };
        let full = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = full.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") || uri.query().is_some() {
            return Err(bad());
        }
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
        let port = uri.port_u16().unwrap_or(80);
        Ok(Self {
            authority: format!("{host}:{port}"),
            prefix: uri.path().trim_end_matches('/').to_owned(),
            host: host.to_owned(),
        })
    }

    /// The host part of the URL, IPv6 brackets included.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The base URL, as messages show it.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.prefix)
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
        let path = "/api/v1/status";
        let body = self.get(path).await?;
        serde_json::from_slice::<Status>(&body)
            .map(|s| s.attachments)
            .map_err(|source| ClientError::Json {
                url: self.url() + path,
                source,
            })
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
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        // The connection task moves the bytes; its errors also fail the
        // request below, which is where they are reported.
        tokio::spawn(connection);
        let request = Request::get(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority)
            .header(header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .expect("a path from a parsed URI and fixed headers are valid");
        let response = sender.send_request(request).await.map_err(http)?;
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

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    #[test]
    fn urls() {
        let cases = [
            ("http://127.0.0.1:9864", Some(("127.0.0.1:9864", ""))),
            ("127.0.0.1:9864", Some(("127.0.0.1:9864", ""))),
            ("http://[::1]:9864/", Some(("[::1]:9864", ""))),
            (
                "http://stats.example/aliasstat/",
                Some(("stats.example:80", "/aliasstat")),
            ),
            ("https://127.0.0.1:9864", None),
            ("http://127.0.0.1:9864/?x=1", None),
            ("http://", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            let got = Client::new(url).ok();
            let got = got
                .as_ref()
                .map(|c| (c.authority.as_str(), c.prefix.as_str()));
            assert_eq!(got, want, "{url}");
        }
        assert_eq!(Client::new("http://[::1]:9864").unwrap().host(), "[::1]");
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
        Client::new(&format!("http://{addr}")).unwrap()
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

            let client = serve_once(ok(r#"{"aliases":[{"address":"x","state":"?"}]}"#));
            let e = client.aliases().await.unwrap_err();
            assert!(matches!(e, ClientError::Json { .. }), "{e}");

            // A port that was just free: nothing listens there.
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = free.local_addr().unwrap();
            drop(free);
            let e = Client::new(&format!("http://{addr}"))
                .unwrap()
                .aliases()
                .await
                .unwrap_err();
            assert!(matches!(e, ClientError::Connect { .. }), "{e}");
        });
    }
}
