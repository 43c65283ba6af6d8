//! A tiny HTTP/1.1 client over `std::net::TcpStream`: one request per
//! connection (`Connection: close`), enough for `/metrics`, the aliasstat
//! API and Prometheus's query API, without an HTTP library.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};

use crate::Netns;

/// How long connecting, and then each read, may take. The servers are on
/// loopback in the same namespace; only a hung server comes near it.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// In the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// Decoded from chunked transfer encoding when the server used it. For
    /// HEAD, whatever followed the head (which should be nothing).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).context("the body is not UTF-8")
    }
}

/// `GET path` from `to`, connecting from inside `ns`.
pub fn get(ns: &Netns, to: SocketAddr, path: &str) -> Result<Response> {
    request(ns, to, "GET", path)
}

/// Sends `method path` with no body and reads the whole response.
pub fn request(ns: &Netns, to: SocketAddr, method: &str, path: &str) -> Result<Response> {
    // The socket belongs to `ns` for its whole life once created there.
    let mut stream = ns
        .enter(|| TcpStream::connect_timeout(&to, TIMEOUT))?
        .with_context(|| format!("failed to connect to {to} in {}", ns.name()))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {to}\r\nUser-Agent: aliasstat-lab\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .with_context(|| format!("failed to send `{method} {path}` to {to}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("failed to read the response to `{method} {path}` from {to}"))?;
    parse(&raw, method == "HEAD").with_context(|| {
        format!(
            "bad response to `{method} {path}` from {to}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Parses a whole response read until the server closed the connection.
pub fn parse(raw: &[u8], head_only: bool) -> Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of the response head")?;
    let head = std::str::from_utf8(&raw[..end]).context("the head is not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    ensure!(
        version.starts_with("HTTP/1."),
        "not HTTP/1.x: {status_line}"
    );
    let status: u16 = parts
        .next()
        .context("no status code")?
        .parse()
        .with_context(|| format!("bad status line {status_line}"))?;
    let headers = lines
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("bad header line {line:?}"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    response.body = if head_only || status == 204 || status == 304 {
        rest.to_vec()
    } else if response
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().context("bad Content-Length")?;
        ensure!(
            rest.len() == length,
            "Content-Length says {length} bytes, the server sent {}",
            rest.len()
        );
        rest.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line without its end")?;
        let line = std::str::from_utf8(&rest[..eol])?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16)
            .with_context(|| format!("bad chunk size {line:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            bail!("a chunk of {size} bytes is cut short");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Percent-encodes `s` for a query string: everything but RFC 3986's
/// unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_delimited_chunked_and_head_responses() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 3\r\n\r\nok\n",
            false,
        )
        .unwrap();
        assert_eq!(
            (r.status, r.header("Content-Type"), r.text().unwrap()),
            (200, Some("text/plain"), "ok\n")
        );
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(r.text().unwrap(), "Wikipedia");
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true).unwrap();
        assert!(r.body.is_empty());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", false).is_err());
        assert!(parse(b"garbage", false).is_err());
    }

    #[test]
    fn encodes_promql() {
        assert_eq!(
            encode(r#"up{job="a b"}"#),
            "up%7Bjob%3D%22a%20b%22%7D".to_owned()
        );
    }
}
