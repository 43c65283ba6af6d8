//! `--web.config.file`: Prometheus exporter-toolkit's web configuration,
//! so operators reuse the file they already wrote for node_exporter.
//!
//! The keys aliasstat knows are `tls_server_config` (`cert_file`,
//! `key_file`, `client_ca_file`, `client_auth_type`, `min_version`) and
//! `basic_auth_users`. Any other key is an error: a setting that is
//! silently ignored (say, a `http_server_config` the operator relies on)
//! is worse than a daemon that refuses to start.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use crate::serve::{
    auth::BasicAuth,
    tls::{self, ClientAuth, TlsSettings, TlsVersion},
};

/// What the HTTP server applies to each connection and request.
pub struct WebConfig {
    /// `None` serves plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// `None` lets every request in.
    pub auth: Option<Arc<BasicAuth>>,
}

/// A problem in the web config, with the file and the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("web config `{}`: {}{message}", path.display(), key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct WebConfigError {
    pub path: PathBuf,
    /// `tls_server_config.cert_file`, `basic_auth_users.alice`, …; `None`
    /// when the problem is the whole file.
    pub key: Option<String>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: ClientAuth,
    #[serde(default)]
    min_version: TlsVersion,
}

impl WebConfig {
    /// Plain HTTP, no authentication: the daemon without a web config.
    pub fn plain() -> Self {
        Self {
            tls: None,
            auth: None,
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// `TLS, basic auth for 2 users`, for the log.
    pub fn describe(&self) -> String {
        let tls = if self.tls.is_some() {
            "TLS"
        } else {
            "plain HTTP"
        };
        match &self.auth {
            Some(auth) => format!("{tls}, basic auth for {} users", auth.users()),
            None => format!("{tls}, no authentication"),
        }
    }
}

/// Reads and checks the web config at `path`, certificate and key
/// included; `None` is plain HTTP.
pub fn load(path: Option<&Path>) -> Result<WebConfig, WebConfigError> {
    let Some(path) = path else {
        return Ok(WebConfig::plain());
    };
    let error = |key: Option<String>, message: String| WebConfigError {
        path: path.to_owned(),
        key,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        error(
            None,
            format!("cannot be read ({e}); point --web.config.file at an existing file"),
        )
    })?;
    // An empty file, or one of comments only, is exporter-toolkit's way of
    // saying "no TLS, no auth".
    let file = if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        File {
            tls_server_config: None,
            basic_auth_users: BTreeMap::new(),
        }
    } else {
        parse_yaml(&text).map_err(|(key, message)| error(key, message))?
    };
    // Relative paths are relative to the config file, as in exporter-toolkit.
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = file
        .tls_server_config
        .map(|t| {
            let settings = TlsSettings {
                cert_file: base.join(t.cert_file),
                key_file: base.join(t.key_file),
                client_ca_file: t.client_ca_file.map(|f| base.join(f)),
                client_auth: t.client_auth_type,
                min_version: t.min_version,
            };
            tls::server_config(&settings)
                .map(|config| TlsAcceptor::from(Arc::new(config)))
                .map_err(|e| error(Some(format!("tls_server_config.{}", e.key)), e.message))
        })
        .transpose()?;
    let auth = if file.basic_auth_users.is_empty() {
        None
    } else {
        let auth = BasicAuth::new(file.basic_auth_users)
            .map_err(|e| error(Some(format!("basic_auth_users.{}", e.user)), e.message))?;
        Some(Arc::new(auth))
    };
    Ok(WebConfig { tls, auth })
}

/// The file's YAML, or the key a problem is about (`None` at the top
/// level) and what is wrong there.
fn parse_yaml(text: &str) -> Result<File, (Option<String>, String)> {
    let mut key = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            // The path is the table holding a bad key, or the key of a bad
            // value; "." is the top level.
            key = Some(e.path().to_string()).filter(|k| k != ".");
            e.into_inner()
        })
    });
    // The error says where, as "at line L, column C".
    parsed.map_err(|e| (key, e.without_snippet().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WebConfig, WebConfigError> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("aliasstat-web-{}-{n}.yml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let loaded = load(Some(&path));
        std::fs::remove_file(&path).unwrap();
        loaded
    }

    #[test]
    fn empty_and_auth_only_files() {
        let web = load_text("# nothing yet\n").unwrap();
        assert!(web.tls.is_none() && web.auth.is_none());
        // The lowest cost keeps the test fast.
        let hash = bcrypt::hash("secret", 4).unwrap();
        let web = load_text(&format!("basic_auth_users:\n  alice: '{hash}'\n")).unwrap();
        assert!(web.tls.is_none());
        assert_eq!(web.describe(), "plain HTTP, basic auth for 1 users");
        assert!(load(None).unwrap().auth.is_none());
    }

    #[test]
    fn errors_name_the_key_and_the_problem() {
        let cases = [
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher: x\n",
                "unknown field `cipher`",
            ),
            ("basic_auth: {}\n", "unknown field `basic_auth`"),
            (
                "tls_server_config:\n  key_file: b\n",
                "missing field `cert_file`",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n",
                "unknown variant `TLS11`",
            ),
            (
                "basic_auth_users:\n  bob: plain\n",
                "basic_auth_users.bob: ",
            ),
            (
                "tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n",
                "tls_server_config.cert_file: cannot read `/nonexistent/c.pem`",
            ),
        ];
        for (text, want) in cases {
            let e = load_text(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.starts_with("web config `") && e.contains(want),
                "{text:?}: {e}"
            );
        }
    }
}
