//! The HTTP endpoints: `/metrics`, `/api/v1/aliases`, `/api/v1/status`,
//! `/api/v1/rates`, `/api/v1/history`, `/healthz` and the live page at `/`, on hyper's
//! HTTP/1 server.
//!
//! Limits keep a misbehaving client from hurting the daemon: a bounded
//! number of connections, a deadline for request headers, a cap on header
//! size (431), and no request bodies (413).
//!
//! The web config (`--web.config.file`) is read for each connection (TLS)
//! and each request (basic auth), so a SIGHUP that replaces it applies to
//! the next connection without dropping the open ones.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::{debug, warn};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpListener,
    sync::{Semaphore, watch},
};

use crate::{
    commands::aliases,
    daemon::Live,
    serve::{
        api, history, metrics,
        rates::{self, History, query::Query},
        web::{self, Asset},
        web_config::WebConfig,
    },
};

/// The port registered for aliasstat in the exporters' range.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9864";

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Largest request head accepted; above it hyper answers 431. Scrapers
/// send a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

struct App {
    live: Arc<Live>,
    rates: Arc<History>,
    exporter: Arc<metrics::Exporter>,
    web: watch::Receiver<Arc<WebConfig>>,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to listen on {addr}; is another exporter using the port? choose one with --listen")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Serves until the process exits.
pub async fn serve(
    listener: TcpListener,
    live: Arc<Live>,
    limits: Limits,
    web: watch::Receiver<Arc<WebConfig>>,
) {
    let history = Arc::new(History::default());
    tokio::spawn(rates::sample(live.clone(), history.clone()));
    let app = Arc::new(App {
        exporter: metrics::Exporter::new(live.clone()),
        live,
        rates: history,
        web,
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // Waiting for a slot before accepting leaves excess connections in
        // the kernel's backlog instead of holding memory here.
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                warn!("http: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = app.clone();
        let header_timeout = limits.header_timeout;
        let tls = app.web.borrow().tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, peer, app, header_timeout).await,
                // The handshake gets the same deadline as the headers. A
                // plain HTTP request to this port fails here, cleanly: rustls
                // answers with an alert and the connection is closed.
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, peer, app, header_timeout).await,
                        Ok(Err(e)) => debug!("http: TLS handshake with {peer} failed: {e}"),
                        Err(_) => debug!("http: TLS handshake with {peer} timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}

async fn serve_connection(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    peer: SocketAddr,
    app: Arc<App>,
    header_timeout: Duration,
) {
    let service = service_fn(move |req| authorized(req, app.clone()));
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(e) = served {
        debug!("http: connection from {peer}: {e}");
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// 404 for a path served with its feature turned off, told apart from an
/// unknown path by [`api::OFF_HEADER`].
fn off(feature: &'static str, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = text(StatusCode::NOT_FOUND, body);
    resp.headers_mut()
        .insert(api::OFF_HEADER, HeaderValue::from_static(feature));
    resp
}

fn with_type(mut resp: Response<Full<Bytes>>, content_type: &'static str) -> Response<Full<Bytes>> {
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Checks basic auth before [`handle`] routes, so that an unauthenticated
/// client learns nothing, not even which paths exist.
async fn authorized(
    req: Request<Incoming>,
    app: Arc<App>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let auth = app.web.borrow().auth.clone();
    if let Some(auth) = auth
        && !auth.allows(req.headers().get(header::AUTHORIZATION)).await
    {
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            "a user and password from the web config are needed\n",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"aliasstat\""),
        );
        return Ok(resp);
    }
    handle(req, app).await
}

/// Whether the client takes `gzip` (Prometheus sends `Accept-Encoding:
/// gzip`); `gzip;q=0` refuses it.
fn accepts_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let weight = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok());
            (name.eq_ignore_ascii_case("gzip") || name == "*") && weight.is_some_and(|q| q > 0.0)
        })
}

async fn metrics_response(app: &App, gzip: bool) -> Response<Full<Bytes>> {
    // Rendering a large map takes a while; it runs off the runtime thread
    // that also follows rtnetlink, and so does compressing it.
    let body = match app.exporter.scrape().await {
        Ok(body) => body,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("scrape failed: {e}\n"),
            );
        }
    };
    let bytes = if gzip {
        match tokio::task::spawn_blocking(move || body.gzip()).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("compressing the scrape failed: {e}\n"),
                );
            }
        }
    } else {
        body.plain()
    };
    let mut resp = with_type(
        text(StatusCode::OK, bytes),
        "text/plain; version=0.0.4; charset=utf-8",
    );
    let headers = resp.headers_mut();
    // Caches must not hand a gzipped body to a client that did not ask.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

/// The paths served; anything else is 404.
#[derive(Clone, Copy)]
enum Route {
    Page(&'static Asset),
    Metrics,
    Health,
    Aliases,
    Services,
    Status,
    Peers,
    Rates,
    History,
}

impl Route {
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/metrics" => Self::Metrics,
            "/healthz" => Self::Health,
            "/api/v1/aliases" => Self::Aliases,
            "/api/v1/status" => Self::Status,
            "/api/v1/peers" => Self::Peers,
            "/api/v1/services" => Self::Services,
            "/api/v1/rates" => Self::Rates,
            "/api/v1/history" => Self::History,
            page => Self::Page(web::asset(page)?),
        })
    }
}

async fn handle(
    req: Request<Incoming>,
    app: Arc<App>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let route = match refuse(&req) {
        Ok(route) => route,
        Err(resp) => return Ok(*resp),
    };
    Ok(match route {
        Route::Page(asset) => page(asset),
        Route::Rates => rates_response(&app, req.uri().query()).await,
        Route::History => history_response(app, req.uri().query()).await,
        Route::Health => health(&app.live),
        Route::Status => json(StatusCode::OK, &api::status(&app.live)),
        Route::Metrics => metrics_response(&app, accepts_gzip(&req)).await,
        Route::Aliases => aliases_response(app).await,
        Route::Peers => peers_response(app, api::wanted_address(req.uri().query())).await,
        Route::Services => services_response(app).await,
    })
}

/// The route of a request this server answers, or the answer to one it
/// does not: a body (413), an unknown path (404), a method other than GET
/// and HEAD (405).
fn refuse(req: &Request<Incoming>) -> Result<Route, Box<Response<Full<Bytes>>>> {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(Box::new(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request bodies are not accepted\n",
        )));
    }
    let Some(route) = Route::of(req.uri().path()) else {
        return Err(Box::new(text(StatusCode::NOT_FOUND, "not found; see /\n")));
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Err(Box::new(resp));
    }
    Ok(route)
}

fn health(live: &Live) -> Response<Full<Bytes>> {
    if live.all_attached() {
        text(StatusCode::OK, "ok\n")
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "a counting program is not attached; see aliasstat_program_attached\n",
        )
    }
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_string(value).expect("plain structs always serialize");
    with_type(text(status, body), "application/json")
}

/// The joined inventory reads the maps: off the runtime thread.
async fn aliases_response(app: Arc<App>) -> Response<Full<Bytes>> {
    let rows = tokio::task::spawn_blocking(move || app.live.rows()).await;
    match rows {
        Ok(Ok(rows)) => with_type(
            text(StatusCode::OK, aliases::json(&rows)),
            "application/json",
        ),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The peer list reads the maps: off the runtime thread.
async fn peers_response(app: Arc<App>, wanted: Option<String>) -> Response<Full<Bytes>> {
    let list = tokio::task::spawn_blocking(move || {
        let live = &app.live;
        let peers = live.peers()?;
        let listed = peers.list(&live.host(), &live.config().config);
        Some(listed.map(|l| crate::peers::view::select(l, wanted.as_deref())))
    })
    .await;
    match list {
        Ok(Some(Ok(list))) => json(StatusCode::OK, &list),
        Ok(None) => off(
            "peers",
            "peer tracking is off (aliasstat run --peers off)\n",
        ),
        Ok(Some(Err(e))) => {
            let why = crate::top::chain(&e);
            warn!("/api/v1/history: {why}");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n"))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The matrix reads the maps and walks the cgroup tree: off the runtime
/// thread too.
async fn services_response(app: Arc<App>) -> Response<Full<Bytes>> {
    match tokio::task::spawn_blocking(move || app.live.services()).await {
        Ok(Ok(Some(doc))) => json(StatusCode::OK, &doc),
        Ok(Ok(None)) => off(
            "services",
            "per-service counting is off (--services off, or no cgroup2 mount: see the daemon's log)\n",
        ),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// A file of the page, under its Content-Security-Policy. It is small and
/// changes with the binary only, but a browser must not keep a page of an
/// older daemon after an upgrade: no-cache makes it revalidate.
fn page(asset: &Asset) -> Response<Full<Bytes>> {
    let mut resp = with_type(text(StatusCode::OK, asset.body), asset.content_type);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(web::CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// One address's long-range chart; the store is read off the runtime
/// thread.
async fn history_response(app: Arc<App>, raw: Option<&str>) -> Response<Full<Bytes>> {
    let query = match history::Query::parse(raw) {
        Ok(query) => query,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let read = tokio::task::spawn_blocking(move || {
        let options = app.live.history()?;
        Some(history::read(options, query, std::time::SystemTime::now()))
    })
    .await;
    match read {
        Ok(Some(Ok(chart))) => json(StatusCode::OK, &chart),
        Ok(None) => off(
            "history",
            "the daemon keeps no history (aliasstat run --no-history)\n",
        ),
        Ok(Some(Err(e))) => {
            let why = crate::top::chain(&e);
            warn!("/api/v1/history: {why}");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n"))
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// One page of the rate table; a bad parameter is 400 with what to fix.
async fn rates_response(app: &App, raw: Option<&str>) -> Response<Full<Bytes>> {
    match Query::parse(raw) {
        Ok(query) => json(
            StatusCode::OK,
            &query.page(&*app.rates.watch().await, app.live.address_capacity()),
        ),
        Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}
