//! `aliasstat check` against a live host: exit 0 when the file and host
//! agree, 1 with one line per drift, 2 for a file it cannot use.

use anyhow::{Result, ensure};
use lab::{
    Veth,
    aliases::{self, Checked},
    harness::{Case, Outcome},
    ip,
    link::Ipv6,
    scratch::Scratch,
};

pub const CASE: Case = ("check_exits_0_1_and_2", run);

fn run() -> Result<Outcome> {
    let veth = Veth::new(Ipv6::Off)?;
    let srv = &veth.server;
    srv.add_addr(ip("10.77.0.2"), 24)?;
    srv.add_addr(ip("10.77.0.3"), 24)?;
    srv.add_labelled_addr(ip("10.77.0.4"), 24, "4")?;
    let ns = Some(&srv.ns);
    let dir = Scratch::new("check")?;

    let agree = dir.write(
        "agree.toml",
        "[[alias]]\nname = \"primary\"\naddress = \"10.77.0.2\"\ninterface = \"lab-srv\"\n\
         [[alias]]\nname = \"api\"\naddress = \"10.77.0.3\"\n\
         [[alias]]\nname = \"web\"\naddress = \"10.77.0.4\"\ninterface = \"lab-srv\"\n",
    )?;
    let checked = aliases::check(ns, &agree)?;
    expect(
        "agreeing file",
        &checked,
        0,
        "the alias file and this host agree\n",
        "",
    )?;

    // One of each kind of drift.
    let drift = dir.write(
        "drift.toml",
        "[[alias]]\nname = \"primary\"\naddress = \"10.77.0.2\"\ninterface = \"eth9\"\n\
         [[alias]]\nname = \"gone\"\naddress = \"10.77.0.50\"\n",
    )?;
    let checked = aliases::check(ns, &drift)?;
    let report = "undocumented: 10.77.0.3/24 on lab-srv\n\
                  undocumented: 10.77.0.4/24 on lab-srv (label lab-srv:4)\n\
                  missing: alias \"gone\" (10.77.0.50) is not configured on this host\n\
                  misplaced: alias \"primary\" (10.77.0.2) is expected on eth9 but is on lab-srv\n";
    expect("drifting file", &checked, 1, report, "")?;

    // An empty file is valid: it documents nothing, so everything drifts.
    let empty = dir.write("empty.toml", "")?;
    let checked = aliases::check(ns, &empty)?;
    ensure!(
        checked.code == 1 && checked.stdout.lines().count() == 3,
        "empty file: {checked:#?}"
    );

    let invalid = dir.write("invalid.toml", "[[alias]\nname = \"a\"\n")?;
    let checked = aliases::check(ns, &invalid)?;
    expect(
        "invalid file",
        &checked,
        2,
        "",
        &format!(
            "aliasstat: {}:1:9: unclosed array table, expected `]`; see the example in the README\n",
            invalid.display()
        ),
    )?;

    // A file that is not there (and is not the default path) is an error,
    // not an empty inventory.
    let missing = dir.path().join("missing.toml");
    let checked = aliases::check(ns, &missing)?;
    expect(
        "missing file",
        &checked,
        2,
        "",
        &format!(
            "aliasstat: failed to read the alias inventory `{}`\n",
            missing.display()
        ),
    )?;
    Ok(Outcome::Passed)
}

/// Fails unless `check` exited with `code` and printed exactly `stdout` and
/// `stderr`.
fn expect(what: &str, checked: &Checked, code: i32, stdout: &str, stderr: &str) -> Result<()> {
    let want = Checked {
        code,
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
    };
    ensure!(*checked == want, "{what}: {checked:#?}");
    Ok(())
}
