//! rustls server configuration from exporter-toolkit's
//! `tls_server_config`, and the PEM reading that `top --ca-file` shares.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
    client::danger::HandshakeSignatureValid,
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject as _};
use serde::Deserialize;

/// exporter-toolkit's `client_auth_type`, named after Go's `tls.ClientAuthType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum ClientAuth {
    #[default]
    NoClientCert,
    /// Ask for a certificate; accept any, or none.
    RequestClientCert,
    /// Require a certificate; accept any.
    RequireAnyClientCert,
    /// Accept none; a certificate given must chain to `client_ca_file`.
    VerifyClientCertIfGiven,
    /// Require a certificate that chains to `client_ca_file`.
    RequireAndVerifyClientCert,
}

/// exporter-toolkit's `min_version`. rustls has nothing older than 1.2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    #[default]
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

/// `tls_server_config`, its paths already resolved.
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
}

/// What is wrong with one key of `tls_server_config`.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TlsError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> TlsError {
    TlsError {
        key,
        message: message.into(),
    }
}

/// Builds the server side: certificate chain and key (which must match),
/// the client certificate policy, and the lowest protocol version.
pub fn server_config(s: &TlsSettings) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let chain = read_certs(&s.cert_file).map_err(|m| bad("cert_file", m))?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file).map_err(|e| {
        bad(
            "key_file",
            format!(
                "cannot read a PEM private key from `{}`: {e}",
                s.key_file.display()
            ),
        )
    })?;
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        let message = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "`{}` is not the private key of the certificate in `{}`",
                s.key_file.display(),
                s.cert_file.display()
            ),
            e => format!(
                "`{}` is not a usable private key: {e}",
                s.key_file.display()
            ),
        };
        bad("key_file", message)
    })?;
    let verifier = client_verifier(s, &provider)?;
    let versions: &[&SupportedProtocolVersion] = match s.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| bad("min_version", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    // The server speaks HTTP/1.1 only; saying so lets clients that offer h2
    // fall back instead of failing.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn client_verifier(
    s: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    match (&s.client_ca_file, s.client_auth) {
        (None, ClientAuth::NoClientCert) => Ok(WebPkiClientVerifier::no_client_auth()),
        (Some(_), ClientAuth::NoClientCert) => Err(bad(
            "client_ca_file",
            "is set but client_auth_type is NoClientCert (the default), so no client \
             certificate would be checked; set client_auth_type: RequireAndVerifyClientCert",
        )),
        (_, ClientAuth::RequestClientCert) => Ok(any(false)),
        (_, ClientAuth::RequireAnyClientCert) => Ok(any(true)),
        (None, auth) => Err(bad(
            "client_auth_type",
            format!("{auth:?} needs client_ca_file, the CA that signs the client certificates"),
        )),
        (Some(ca_file), auth) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca_file).map_err(|m| bad("client_ca_file", m))? {
                roots.add(cert).map_err(|e| {
                    bad(
                        "client_ca_file",
                        format!(
                            "`{}` holds an unusable CA certificate: {e}",
                            ca_file.display()
                        ),
                    )
                })?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone());
            let builder = if auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| bad("client_ca_file", e.to_string()))
        }
    }
}

/// Every certificate in the PEM file at `path`; none is an error. The
/// message names the file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "`{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// RequestClientCert and RequireAnyClientCert: Go's crypto/tls asks for a
/// certificate without checking who issued it. The handshake signature is
/// still verified, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
