//! Alias files `aliasstat check` must reject, each with its place and a
//! message that says what to do.

use anyhow::{Result, ensure};
use lab::{
    aliases::{self, Checked},
    harness::{Case, Outcome},
    scratch::Scratch,
};

/// Writes `text` as an alias file and runs `aliasstat check` on it; the
/// file must be rejected with exit status 2 and exactly
/// `aliasstat: FILE:LINE:COLUMN: MESSAGE` on stderr.
fn rejected(text: &str, line: usize, column: usize, message: &str) -> Result<Outcome> {
    let dir = Scratch::new("bad")?;
    let file = dir.write("aliases.toml", text)?;
    // Checked here, outside any lab namespace: the file is validated before
    // the host is looked at, so these need neither root nor a namespace.
    let checked = aliases::check(None, &file)?;
    let expected = Checked {
        code: 2,
        stdout: String::new(),
        stderr: format!("aliasstat: {}:{line}:{column}: {message}\n", file.display()),
    };
    ensure!(
        checked == expected,
        "for the file:\n{text}\nexpected {expected:#?}\ngot {checked:#?}"
    );
    println!("  {}", checked.stderr.trim_end());
    Ok(Outcome::Passed)
}

/// A row a rejected file: the case's name, the file, and where and what
/// `check` must report.
struct Rejected {
    name: &'static str,
    text: &'static str,
    line: usize,
    column: usize,
    message: &'static str,
}

const REJECTED: [Rejected; 6] = [
    Rejected {
        name: "config_error_duplicate_name",
        text: "# the web tier\n[[alias]]\nname = \"web\"\naddress = \"192.0.2.10\"\n\n[[alias]]\nname    = \"web\"\naddress = \"192.0.2.11\"\n",
        line: 7,
        column: 11,
        message: "the alias name \"web\" is already used on line 3; alias names must be unique",
    },
    // The same IPv6 address spelt two ways is still the same address.
    Rejected {
        name: "config_error_duplicate_address",
        text: "[[alias]]\nname = \"dns-a\"\naddress = \"2001:db8::53\"\n\n[[alias]]\nname = \"dns-b\"\n  address = \"2001:0db8:0:0::53\"\n",
        line: 7,
        column: 13,
        message: "address 2001:db8::53 is already documented by alias \"dns-a\" on line 2; document each address once",
    },
    Rejected {
        name: "config_error_invalid_address",
        text: "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.300\"\n",
        line: 3,
        column: 11,
        message: "\"192.0.2.300\" is not an IP address; write one IPv4 or IPv6 address without a prefix length, such as \"192.168.1.100\" or \"2001:db8::1\"",
    },
    Rejected {
        name: "config_error_unknown_key",
        text: "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.10\"\n  purpse = \"typo\"\n",
        line: 4,
        column: 3,
        message: "unknown field `purpse`, expected one of `name`, `address`, `owner`, `purpose`, `interface`, `service`, `commit_mbps`; see the example in the README",
    },
    Rejected {
        name: "config_error_empty_name",
        text: "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.10\"\n\n[[alias]]\nname = \"\"\naddress = \"192.0.2.11\"\n",
        line: 6,
        column: 8,
        message: "the alias name is empty; give every [[alias]] a name such as \"shop-tls\"",
    },
    // The commit is on its own line, so the message names the alias.
    Rejected {
        name: "config_error_bad_commit",
        text: "[[alias]]\nname = \"shop\"\naddress = \"192.0.2.10\"\nowner = \"acme\"\ncommit_mbps = -100\n",
        line: 5,
        column: 15,
        message: "the commit_mbps of alias \"shop\" is -100; the committed rate must be at least 0.000001 and at most 1000000000 megabits per second",
    },
];

/// The case of row `I` of [`REJECTED`].
pub const fn case<const I: usize>() -> Case {
    (REJECTED[I].name, run::<I>)
}

fn run<const I: usize>() -> Result<Outcome> {
    let Rejected {
        text,
        line,
        column,
        message,
        ..
    } = REJECTED[I];
    rejected(text, line, column, message)
}
