//! Broken web configs: each one stops the daemon at start with a message
//! that names the file, the key and the problem; on SIGHUP each keeps the
//! previous config, logs why, and scraping goes on.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use lab::harness::Outcome;

use crate::fixture::{Curl, Lab, USER, expect_status};

/// (what, the config, what the message must say).
fn cases(lab: &Lab) -> Vec<(&'static str, String, String)> {
    let c = &lab.certs;
    let missing = c.dir.path().join("missing.pem");
    vec![
        (
            "an unknown key",
            lab.web_config("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
            "tls_server_config.cipher_suites: unknown field `cipher_suites`".to_owned(),
        ),
        (
            "a bad bcrypt hash",
            lab.web_config("").replace(&lab.hash, "plain-text-password"),
            format!("basic_auth_users.{USER}: not a bcrypt hash"),
        ),
        (
            "a missing certificate file",
            lab.web_config("").replace(
                &c.server_cert.display().to_string(),
                &missing.display().to_string(),
            ),
            format!(
                "tls_server_config.cert_file: cannot read `{}`",
                missing.display()
            ),
        ),
        (
            "a key that does not match the certificate",
            lab.web_config("").replace(
                &c.server_key.display().to_string(),
                &c.other_key.display().to_string(),
            ),
            format!(
                "tls_server_config.key_file: `{}` is not the private key of the certificate in `{}`",
                c.other_key.display(),
                c.server_cert.display()
            ),
        ),
    ]
}

pub fn at_start() -> Result<Outcome> {
    let lab = Lab::new()?;
    for (what, text, says) in cases(&lab) {
        let path = lab.write_web_config(&text)?;
        let message = match lab.start(&path) {
            Ok(daemon) => {
                daemon.stop()?;
                bail!("the daemon started with {what}");
            }
            Err(e) => format!("{e:#}"),
        };
        let want = format!("aliasstat: web config `{}`: {says}", path.display());
        ensure!(
            message.contains(&want),
            "{what}: expected `{want}` in:\n{message}"
        );
        println!("  {what}: {says}");
    }
    Ok(Outcome::Passed)
}

pub fn on_sighup() -> Result<Outcome> {
    let lab = Lab::new()?;
    let good = lab.web_config("");
    let path = lab.write_web_config(&good)?;
    let daemon = lab.start(&path)?;
    for (what, text, says) in cases(&lab) {
        let since = daemon.log().len();
        lab.write_web_config(&text)?;
        daemon.hangup()?;
        let line = daemon.wait_for_line(
            since,
            "SIGHUP: keeping the previous web config",
            Duration::from_secs(10),
        )?;
        ensure!(
            line.contains(&says),
            "{what}: expected `{says}` in the log line {line:?}"
        );
        // Still TLS with the old certificate, still the old password.
        lab.get("/metrics")?;
        expect_status(
            &format!("after {what}, no credentials"),
            &lab.curl(&lab.url(), "/metrics", &[])?,
            401,
        )?;
        println!("  SIGHUP with {what}: kept the previous config; scraping goes on");
    }
    // A valid file is taken: without basic_auth_users, no password is asked.
    let since = daemon.log().len();
    let open = good
        .split("basic_auth_users:")
        .next()
        .unwrap_or_default()
        .to_owned();
    lab.write_web_config(&open)?;
    daemon.hangup()?;
    daemon.wait_for_line(
        since,
        "SIGHUP: reloaded the web config",
        Duration::from_secs(10),
    )?;
    match lab.curl(&lab.url(), "/metrics", &[])? {
        Curl::Answered(r) if r.status == 200 => {}
        other => bail!("after reloading a config without basic auth: {other:?}"),
    }
    daemon.stop()?;
    Ok(Outcome::Passed)
}
