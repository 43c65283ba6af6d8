//! The documented alias inventory: a TOML file of `[[alias]]` entries.

use std::{
    collections::HashMap,
    fmt, io,
    net::IpAddr,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::{
    commands::table::{escape, needs_escape},
    services::cgroups::unit_of,
};

/// Where aliasstat looks when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/aliasstat/aliases.toml";

/// One documented alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub address: IpAddr,
    pub owner: String,
    pub purpose: String,
    /// Where the address is expected to be configured, if the file says.
    pub interface: Option<String>,
    /// The systemd unit (or cgroup path) documented to use the address:
    /// the one that receives on it and sends from it.
    pub service: Option<String>,
    /// The committed rate of the alias's contract (`commit_mbps`), in
    /// bit/s, if the file gives one.
    pub commit_bps: Option<u64>,
}

/// The parsed file. An empty one documents nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    aliases: Vec<Alias>,
    /// Position in `aliases` of each address: every join of the host's
    /// addresses or the counters with the file is a lookup here, so it
    /// costs one pass whatever the number of aliases.
    by_address: foldhash::HashMap<IpAddr, usize>,
}

impl Config {
    /// The aliases in file order. A repeated address keeps its first alias
    /// (the parser rejects repeats; this only matters for hand-made ones).
    pub fn new(aliases: Vec<Alias>) -> Self {
        let mut by_address =
            foldhash::HashMap::with_capacity_and_hasher(aliases.len(), Default::default());
        for (i, a) in aliases.iter().enumerate() {
            by_address.entry(a.address).or_insert(i);
        }
        Self {
            aliases,
            by_address,
        }
    }

    /// Every alias, in file order.
    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }

    pub fn alias(&self, address: IpAddr) -> Option<&Alias> {
        self.by_address.get(&address).map(|&i| &self.aliases[i])
    }
}

/// `file:line:column`, 1-based, as editors and compilers print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read the alias inventory `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
}

/// Reads `path`. When `path` is the default and does not exist, nothing is
/// documented: a host without an inventory is valid, just undocumented.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound && path == Path::new(DEFAULT_PATH) => {
            Ok(Config::default())
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    alias: Vec<RawAlias>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlias {
    name: Spanned<String>,
    address: Spanned<String>,
    owner: Option<Spanned<String>>,
    purpose: Option<Spanned<String>>,
    interface: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    commit_mbps: Option<Spanned<toml::Value>>,
}

/// Names and interfaces are identifiers that logs and `check` print on one
/// line, so the first character that [`needs_escape`] (a newline, a tab,
/// ESC…) is refused where its value starts; TOML lets `\n` and `\u001b`
/// through. Owners and purposes are free text (a purpose may well span
/// lines): they are kept as written, and every output escapes them.
fn plain(
    field: &str,
    value: Option<Spanned<String>>,
) -> Result<Option<String>, (Range<usize>, String)> {
    let Some(value) = value else {
        return Ok(None);
    };
    let span = value.span();
    let text = value.into_inner();
    match text.chars().find(|&c| needs_escape(c)) {
        None => Ok(Some(text)),
        Some(c) => Err((
            span,
            format!(
                "the alias {field} \"{}\" holds the control character U+{:04X}; \
                 write it as one line of plain text",
                escape(&text),
                u32::from(c)
            ),
        )),
    }
}

/// Parses and validates the text of an inventory file named `path`. First
/// uses are kept as byte offsets and turned into line numbers only for an
/// error: counting lines for every alias made a large file quadratic.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Range<usize>, message: String| ConfigError::Invalid {
        location: locate(text, path, span.start),
        message,
    };
    let file: File = toml::from_str(text).map_err(|e| {
        invalid(
            e.span().unwrap_or(0..0),
            format!("{}; see the example in the README", e.message().trim_end()),
        )
    })?;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut addresses: HashMap<IpAddr, (String, usize)> = HashMap::new();
    let mut aliases = Vec::with_capacity(file.alias.len());
    let reject = |(span, message): (Range<usize>, String)| invalid(span, message);
    let plain = |field, value| plain(field, value).map_err(reject);
    for raw in file.alias {
        let name_span = raw.name.span();
        let name = plain("name", Some(raw.name))?.unwrap_or_default();
        let owner = raw.owner.map(Spanned::into_inner).unwrap_or_default();
        let purpose = raw.purpose.map(Spanned::into_inner).unwrap_or_default();
        let interface = plain("interface", raw.interface)?;
        let service = service(raw.service).map_err(|(span, message)| invalid(span, message))?;
        if name.trim().is_empty() {
            return Err(invalid(
                name_span,
                "the alias name is empty; give every [[alias]] a name such as \"shop-tls\"".into(),
            ));
        }
        if let Some(first) = names.insert(name.clone(), name_span.start) {
            let first = locate(text, path, first).line;
            return Err(invalid(
                name_span,
                format!(
                    "the alias name \"{name}\" is already used on line {first}; alias names must be unique"
                ),
            ));
        }
        let address_span = raw.address.span();
        let address = ip_address(raw.address.get_ref())
            .map_err(|message| invalid(address_span.clone(), message))?;
        if let Some((other, first)) = addresses.insert(address, (name.clone(), name_span.start)) {
            let first = locate(text, path, first).line;
            return Err(invalid(
                address_span,
                format!(
                    "address {address} is already documented by alias \"{other}\" on line {first}; document each address once"
                ),
            ));
        }
        let commit_bps = commit_bps(&name, raw.commit_mbps).map_err(reject)?;
        aliases.push(Alias {
            name,
            address,
            owner,
            purpose,
            interface,
            service,
            commit_bps,
        });
    }
    Ok(Config::new(aliases))
}

/// A unit name as `aliasstat services` labels it: a systemd unit that can
/// own sockets (`nginx.service`, `session-3.scope`, `cups.socket`), or,
/// for a cgroup without one, its path from the cgroup root (`/batch`).
fn service(value: Option<Spanned<String>>) -> Result<Option<String>, (Range<usize>, String)> {
    let span = value.as_ref().map(Spanned::span);
    let Some(text) = plain("service", value)? else {
        return Ok(None);
    };
    let is_unit = !text.contains('/') && unit_of(&text).as_deref() == Some(text.as_str());
    let is_path = text.starts_with('/') && unit_of(&text).is_none();
    if is_unit || is_path {
        return Ok(Some(text));
    }
    Err((
        span.unwrap_or(0..0),
        format!(
            "the alias service \"{}\" is neither a systemd unit nor a cgroup path; write the unit as `systemctl status` names it, such as \"nginx.service\", or a path from the cgroup root for a cgroup without a unit, such as \"/batch\"",
            escape(&text)
        ),
    ))
}

/// The largest `commit_mbps`: 1 Pbit/s, far above any link, and well inside
/// the bit/s that a `u64` and an `f64` hold exactly.
const MAX_COMMIT_MBPS: f64 = 1e9;

/// `commit_mbps` (megabits per second, 10^6 bit/s, as contracts write them)
/// in bit/s. A string or a value that is not a positive rate names the
/// alias, since the line alone may be far from its `name`.
fn commit_bps(
    alias: &str,
    value: Option<Spanned<toml::Value>>,
) -> Result<Option<u64>, (Range<usize>, String)> {
    let Some(value) = value else {
        return Ok(None);
    };
    let span = value.span();
    let mbps = match value.into_inner() {
        toml::Value::Integer(i) => i as f64,
        toml::Value::Float(f) => f,
        other => {
            return Err((
                span,
                format!(
                    "the commit_mbps of alias \"{}\" is a {}; write the committed rate as a number of megabits per second, such as 100 or 2.5",
                    escape(alias),
                    other.type_str()
                ),
            ));
        }
    };
    // Rounded to whole bit/s: below 0.5 bit/s is no commitment at all.
    let bps = (mbps * 1e6).round();
    if mbps.is_finite() && bps >= 1.0 && mbps <= MAX_COMMIT_MBPS {
        return Ok(Some(bps as u64));
    }
    Err((
        span,
        format!(
            "the commit_mbps of alias \"{}\" is {mbps}; the committed rate must be at least 0.000001 and at most {MAX_COMMIT_MBPS} megabits per second",
            escape(alias)
        ),
    ))
}

fn ip_address(text: &str) -> Result<IpAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "\"{}\" is not an IP address; write one IPv4 or IPv6 address without a prefix length, such as \"192.168.1.100\" or \"2001:db8::1\"",
            escape(text)
        )
    })
}

fn locate(text: &str, path: &Path, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        path: path.to_owned(),
        line,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/aliasstat/aliases.toml";

    fn error(text: &str) -> String {
        parse(text, Path::new(PATH)).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
[[alias]]
name = "shop-tls"
address = "192.168.1.100"
owner = "web-team"
purpose = "IP-based TLS vhost for shop.example"
interface = "eth0"   # optional: where it is expected
service = "nginx.service"   # optional: the unit that uses it
commit_mbps = 100

[[alias]]
name = "dns-v6"
address = "2001:db8::53"
"#;
        let config = parse(text, Path::new(PATH)).unwrap();
        assert_eq!(
            config.aliases(),
            [
                Alias {
                    name: "shop-tls".into(),
                    address: "192.168.1.100".parse().unwrap(),
                    owner: "web-team".into(),
                    purpose: "IP-based TLS vhost for shop.example".into(),
                    interface: Some("eth0".into()),
                    service: Some("nginx.service".into()),
                    commit_bps: Some(100_000_000),
                },
                Alias {
                    name: "dns-v6".into(),
                    address: "2001:db8::53".parse().unwrap(),
                    owner: String::new(),
                    purpose: String::new(),
                    interface: None,
                    service: None,
                    commit_bps: None,
                },
            ]
        );
    }

    #[test]
    fn owners_and_purposes_are_free_text() {
        let text = "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\nowner = \"ops\\nroot\"\npurpose = \"\"\"\n\ttabbed\nsecond line\"\"\"\n";
        let config = parse(text, Path::new(PATH)).unwrap();
        let alias = &config.aliases()[0];
        assert_eq!(alias.owner, "ops\nroot");
        assert_eq!(alias.purpose, "\ttabbed\nsecond line");
    }

    #[test]
    fn every_error_class_names_its_place() {
        // (file text, expected message)
        let cases = [
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[alias]]\nname = \"a\"\naddress = \"10.0.0.2\"\n",
                format!(
                    "{PATH}:5:8: the alias name \"a\" is already used on line 2; alias names must be unique"
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\n\n[[alias]]\nname = \"b\"\naddress = \"10.0.0.01\"\n",
                format!(
                    "{PATH}:7:11: \"10.0.0.01\" is not an IP address; write one IPv4 or IPv6 address without a prefix length, such as \"192.168.1.100\" or \"2001:db8::1\""
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"2001:db8::1\"\n[[alias]]\nname = \"b\"\naddress = \"2001:DB8:0::1\"\n",
                format!(
                    "{PATH}:6:11: address 2001:db8::1 is already documented by alias \"a\" on line 2; document each address once"
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n",
                format!(
                    "{PATH}:3:11: \"10.0.0.1/24\" is not an IP address; write one IPv4 or IPv6 address without a prefix length, such as \"192.168.1.100\" or \"2001:db8::1\""
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\nownr = \"x\"\n",
                format!(
                    "{PATH}:4:1: unknown field `ownr`, expected one of `name`, `address`, `owner`, `purpose`, `interface`, `service`, `commit_mbps`; see the example in the README"
                ),
            ),
            (
                "[[alias]]\nname = \"  \"\naddress = \"10.0.0.1\"\n",
                format!(
                    "{PATH}:2:8: the alias name is empty; give every [[alias]] a name such as \"shop-tls\""
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\n",
                format!("{PATH}:1:1: missing field `address`; see the example in the README"),
            ),
            (
                "[[alias]]\nname = \"web\\u001b[2J\"\naddress = \"10.0.0.1\"\n",
                format!(
                    "{PATH}:2:8: the alias name \"web\\u{{1b}}[2J\" holds the control character U+001B; write it as one line of plain text"
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\ninterface = \"eth0\\u202e\"\n",
                format!(
                    "{PATH}:4:13: the alias interface \"eth0\\u{{202e}}\" holds the control character U+202E; write it as one line of plain text"
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\\u001b\"\n",
                format!(
                    "{PATH}:3:11: \"10.0.0.1\\u{{1b}}\" is not an IP address; write one IPv4 or IPv6 address without a prefix length, such as \"192.168.1.100\" or \"2001:db8::1\""
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\nservice = \"nginx\"\n",
                format!(
                    "{PATH}:4:11: the alias service \"nginx\" is neither a systemd unit nor a cgroup path; write the unit as `systemctl status` names it, such as \"nginx.service\", or a path from the cgroup root for a cgroup without a unit, such as \"/batch\""
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\nservice = \"/system.slice/nginx.service\"\n",
                format!(
                    "{PATH}:4:11: the alias service \"/system.slice/nginx.service\" is neither a systemd unit nor a cgroup path; write the unit as `systemctl status` names it, such as \"nginx.service\", or a path from the cgroup root for a cgroup without a unit, such as \"/batch\""
                ),
            ),
            (
                "[[alias]]\nname = \"a\"\naddress = \"10.0.0.1\"\nservice = \"web.service\\u001b\"\n",
                format!(
                    "{PATH}:4:11: the alias service \"web.service\\u{{1b}}\" holds the control character U+001B; write it as one line of plain text"
                ),
            ),
            (
                "[[alias]]\nname = \"web\"\naddress = \"10.0.0.1\"\ncommit_mbps = \"100\"\n",
                format!(
                    "{PATH}:4:15: the commit_mbps of alias \"web\" is a string; write the committed rate as a number of megabits per second, such as 100 or 2.5"
                ),
            ),
            (
                "[[alias]]\nname = \"web\"\naddress = \"10.0.0.1\"\ncommit_mbps = -5\n",
                format!(
                    "{PATH}:4:15: the commit_mbps of alias \"web\" is -5; the committed rate must be at least 0.000001 and at most 1000000000 megabits per second"
                ),
            ),
            (
                "[[alias]]\nname = \"web\"\naddress = \"10.0.0.1\"\ncommit_mbps = 0\n",
                format!(
                    "{PATH}:4:15: the commit_mbps of alias \"web\" is 0; the committed rate must be at least 0.000001 and at most 1000000000 megabits per second"
                ),
            ),
            (
                "[[alias]]\nname = \"web\"\naddress = \"10.0.0.1\"\ncommit_mbps = nan\n",
                format!(
                    "{PATH}:4:15: the commit_mbps of alias \"web\" is NaN; the committed rate must be at least 0.000001 and at most 1000000000 megabits per second"
                ),
            ),
            (
                "[[alias]\nname = \"a\"\n",
                format!(
                    "{PATH}:1:9: unclosed array table, expected `]`; see the example in the README"
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(error(text), expected, "for:\n{text}");
        }
    }

    #[test]
    fn a_missing_default_file_documents_nothing() {
        // Only the default path may be missing; this test relies on the
        // build machine not having one, which a test cannot arrange.
        if !Path::new(DEFAULT_PATH).exists() {
            assert_eq!(load(Path::new(DEFAULT_PATH)).unwrap(), Config::default());
        }
        let missing = Path::new("/nonexistent/aliases.toml");
        assert!(matches!(load(missing), Err(ConfigError::Read { .. })));
    }
}
