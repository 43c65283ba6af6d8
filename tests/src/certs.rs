//! A private CA, a server certificate for the loopback address, and
//! client certificates, written as PEM files; and the web config (the
//! exporter-toolkit format that the daemon and Prometheus both read) that
//! serves with them.

use std::path::PathBuf;

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::scratch::Scratch;

/// PEM files in a scratch directory of their own.
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate from another CA, which the daemon must refuse.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
    /// A key of the right kind that belongs to no certificate here.
    pub other_key: PathBuf,
    pub dir: Scratch,
}

fn new_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// A leaf for `names` signed by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String)> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl Certs {
    pub fn new() -> Result<Self> {
        let dir = Scratch::new("certs")?;
        let ca = new_ca("aliasstat lab CA")?;
        let (server_cert, server_key) = leaf(
            &ca,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_cert, client_key) = leaf(
            &ca,
            &["prometheus.lab"],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let stranger = new_ca("some other CA")?;
        let (stranger_cert, stranger_key) = leaf(
            &stranger,
            &["stranger.lab"],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Self {
            ca: dir.write("ca.pem", &ca.pem())?,
            server_cert: dir.write("server.pem", &server_cert)?,
            server_key: dir.write("server-key.pem", &server_key)?,
            client_cert: dir.write("client.pem", &client_cert)?,
            client_key: dir.write("client-key.pem", &client_key)?,
            stranger_cert: dir.write("stranger.pem", &stranger_cert)?,
            stranger_key: dir.write("stranger-key.pem", &stranger_key)?,
            other_key: dir.write("other-key.pem", &KeyPair::generate()?.serialize_pem())?,
            dir,
        })
    }

    /// A web config: TLS with the server certificate, `extra` under
    /// `tls_server_config`, and basic auth for `user`, whose password has
    /// the bcrypt `hash`.
    pub fn web_config(&self, extra: &str, user: &str, hash: &str) -> String {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n{extra}basic_auth_users:\n  {user}: '{hash}'\n",
            self.server_cert.display(),
            self.server_key.display(),
        )
    }
}
