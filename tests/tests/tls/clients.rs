//! curl and `aliasstat top` against the daemon with TLS and basic auth,
//! and client certificates with `RequireAndVerifyClientCert`.

use anyhow::{Context, Result, bail, ensure};
use lab::{
    Count,
    daemon::binary,
    harness::{Outcome, check_eq},
};

use crate::fixture::{ALIAS, Curl, Lab, PASSWORD, USER, expect_status, run};

pub fn credentials() -> Result<Outcome> {
    let lab = Lab::new()?;
    let daemon = lab.start(&lab.write_web_config(&lab.web_config(""))?)?;
    let url = lab.url();
    let wrong = format!("{USER}:not {PASSWORD}");
    let unknown = format!("nobody:{PASSWORD}");
    for path in [
        "/metrics",
        "/healthz",
        "/api/v1/aliases",
        "/",
        "/no-such-path",
    ] {
        for (what, args) in [
            ("no credentials", vec![]),
            ("a wrong password", vec!["-u", &wrong]),
            ("an unknown user", vec!["-u", &unknown]),
        ] {
            let got = lab.curl(&url, path, &args)?;
            expect_status(&format!("{path} with {what}"), &got, 401)?;
            if let Curl::Answered(r) = got {
                check_eq(
                    &format!("WWW-Authenticate of {path}"),
                    &Some("Basic realm=\"aliasstat\""),
                    &r.header("WWW-Authenticate"),
                )?;
            }
        }
    }
    for path in ["/metrics", "/healthz", "/api/v1/aliases"] {
        lab.get(path)?;
    }
    println!("  401 with WWW-Authenticate without the right password, 200 with it");

    // Plain HTTP to the TLS port: refused, and the daemon keeps serving.
    match lab.curl(&format!("http://{}", lab.listen), "/metrics", &[])? {
        Curl::Failed { code, stderr } => {
            println!("  plain HTTP to the TLS port: curl exit {code}: {stderr}")
        }
        Curl::Answered(r) => bail!("plain HTTP to the TLS port was answered: {r:?}"),
    }
    lab.get("/metrics")?;

    let (rx, tx) = lab.send()?;
    top_sees(
        &lab,
        &["--password-file".as_ref(), lab.password_file.as_os_str()],
        None,
        rx,
        tx,
    )?;
    top_sees(&lab, &[], Some(PASSWORD), rx, tx)?;
    println!(
        "  top --once --json over https: rx {rx}, tx {tx} (password from a file, then from the environment)"
    );

    let refused = top(&lab, &[], Some("wrong"))?;
    ensure!(
        refused.contains("401 Unauthorized"),
        "top with a wrong password should say 401: {refused}"
    );
    daemon.stop()?;
    Ok(Outcome::Passed)
}

/// `top --once --json` with `args` and the password in the environment
/// when given; its stdout, or its stderr when it failed.
fn top(lab: &Lab, args: &[&std::ffi::OsStr], env_password: Option<&str>) -> Result<String> {
    let mut cmd = lab.ns().exec(binary()?);
    cmd.args(["top", "--once", "--json", "--interval", "200ms", "--url"])
        .arg(lab.url())
        .args(["--user", USER, "--ca-file"])
        .arg(&lab.certs.ca)
        .args(args)
        .env_remove("ALIASSTAT_PASSWORD");
    if let Some(password) = env_password {
        cmd.env("ALIASSTAT_PASSWORD", password);
    }
    let out = run(&mut cmd)?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(if out.status.success() {
        text(&out.stdout)
    } else {
        text(&out.stderr)
    })
}

fn top_sees(
    lab: &Lab,
    args: &[&std::ffi::OsStr],
    env_password: Option<&str>,
    rx: Count,
    tx: Count,
) -> Result<()> {
    let printed = top(lab, args, env_password)?;
    let doc: serde_json::Value =
        serde_json::from_str(&printed).with_context(|| format!("top printed {printed:?}"))?;
    let row = doc["aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == ALIAS)
        .with_context(|| format!("no row for {ALIAS} in {doc}"))?;
    let counts = |d: &str| (row[d]["packets"].as_u64(), row[d]["bytes"].as_u64());
    check_eq(
        "top's rx",
        &(Some(rx.packets), Some(rx.bytes)),
        &counts("rx"),
    )?;
    check_eq(
        "top's tx",
        &(Some(tx.packets), Some(tx.bytes)),
        &counts("tx"),
    )
}

pub fn client_certificate() -> Result<Outcome> {
    let lab = Lab::new()?;
    let extra = format!(
        "  client_ca_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n",
        lab.certs.ca.display()
    );
    let daemon = lab.start(&lab.write_web_config(&lab.web_config(&extra))?)?;
    let url = lab.url();
    let credentials = format!("{USER}:{PASSWORD}");
    let c = &lab.certs;
    let path = |p: &std::path::Path| p.display().to_string();
    let (client, client_key) = (path(&c.client_cert), path(&c.client_key));
    let (stranger, stranger_key) = (path(&c.stranger_cert), path(&c.stranger_key));
    for (what, cert) in [
        ("no client certificate", None),
        ("one from another CA", Some((&stranger, &stranger_key))),
    ] {
        let mut args = vec!["-u", credentials.as_str()];
        if let Some((cert, key)) = cert {
            args.extend(["--cert", cert.as_str(), "--key", key.as_str()]);
        }
        match lab.curl(&url, "/metrics", &args)? {
            Curl::Failed { code, stderr } => {
                println!("  {what}: refused (curl exit {code}: {stderr})")
            }
            Curl::Answered(r) => bail!("{what}: answered {}", r.status),
        }
    }
    let got = lab.curl(
        &url,
        "/metrics",
        &["-u", &credentials, "--cert", &client, "--key", &client_key],
    )?;
    expect_status("a client certificate from the CA", &got, 200)?;
    println!("  a client certificate from client_ca_file: 200");
    daemon.stop()?;
    Ok(Outcome::Passed)
}
