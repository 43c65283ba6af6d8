//! The alias file parser against arbitrary input: it never panics, and
//! every error it reports points at a line and column inside the text, so
//! that an operator can go there. Also checks that the shipped example
//! (dist/aliases.toml) parses.

use std::path::Path;

use aliasstat::{
    commands::table::needs_escape,
    inventory::{ConfigError, parse_config},
};
use proptest::prelude::*;

const PATH: &str = "/etc/aliasstat/aliases.toml";

/// Fails unless an error from `text` names a place inside it: a line that
/// exists, and a column at most one past that line's last character.
fn check_location(text: &str, err: &ConfigError) -> Result<(), TestCaseError> {
    let ConfigError::Invalid { location, message } = err else {
        return Err(TestCaseError::fail(format!("not a located error: {err}")));
    };
    prop_assert_eq!(location.path.as_path(), Path::new(PATH));
    // `str::lines` drops a last empty line; an error may point there.
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(
        (1..=lines.len()).contains(&location.line),
        "line {} of {} lines: {}",
        location.line,
        lines.len(),
        message
    );
    let line = lines[location.line - 1];
    prop_assert!(
        (1..=line.chars().count() + 1).contains(&location.column),
        "column {} of line {:?}: {}",
        location.column,
        line,
        message
    );
    prop_assert!(!message.trim().is_empty());
    // The rendering starts with the place, as compilers print it.
    let shown = err.to_string();
    let prefix = format!("{PATH}:{}:{}: ", location.line, location.column);
    prop_assert!(shown.starts_with(&prefix), "{}", shown);
    Ok(())
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match parse_config(text, Path::new(PATH)) {
        Ok(config) => {
            // Whatever parses holds unique names and addresses.
            let mut names: Vec<_> = config.aliases().iter().map(|a| &a.name).collect();
            let mut addrs: Vec<_> = config.aliases().iter().map(|a| a.address).collect();
            names.sort();
            names.dedup();
            addrs.sort();
            addrs.dedup();
            prop_assert_eq!(names.len(), config.aliases().len());
            prop_assert_eq!(addrs.len(), config.aliases().len());
            // …and names and interfaces that logs print as plain lines.
            for a in config.aliases() {
                prop_assert!(!a.name.chars().any(needs_escape), "{:?}", a.name);
                if let Some(i) = &a.interface {
                    prop_assert!(!i.chars().any(needs_escape), "{:?}", i);
                }
            }
            Ok(())
        }
        Err(e) => check_location(text, &e),
    }
}

/// Values that are almost right: addresses with prefixes, leading zeros,
/// zones, spaces; names empty or repeated; multi-byte characters, so that
/// byte offsets and character columns differ.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"10.0.0.1\"".to_owned()),
        Just("\"10.0.0.1\"".to_owned()),
        Just("\"2001:db8::1\"".to_owned()),
        Just("\"10.0.0.1/24\"".to_owned()),
        Just("\"010.0.0.1\"".to_owned()),
        Just("\"fe80::1%eth0\"".to_owned()),
        Just("\" 10.0.0.2 \"".to_owned()),
        Just("\"\"".to_owned()),
        Just("\"  \"".to_owned()),
        Just("\"a\"".to_owned()),
        Just("\"é🦀\"".to_owned()),
        // TOML escapes that decode to what a terminal acts on.
        Just("\"web\\u001b[2J\"".to_owned()),
        Just("\"a\\nb\\tc\"".to_owned()),
        Just("\"\\u009b31m\\u202e\"".to_owned()),
        Just("42".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ x = 1 }".to_owned()),
        Just("\"unterminated".to_owned()),
        Just("'''multi\nline'''".to_owned()),
        "\"[a-z0-9.:/ é]{0,12}\"",
        "[ -~]{0,8}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_owned()),
        Just("address".to_owned()),
        Just("owner".to_owned()),
        Just("purpose".to_owned()),
        Just("interface".to_owned()),
        Just("ownr".to_owned()),
        Just("\"name\"".to_owned()),
        Just("alias.name".to_owned()),
        "[a-z]{1,6}",
    ]
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("[[alias]]".to_owned()),
        1 => Just("[alias]".to_owned()),
        1 => Just("[[alias]".to_owned()),
        1 => Just("[[other]]".to_owned()),
        1 => Just("alias = []".to_owned()),
        1 => Just("# é comment 🦀".to_owned()),
        1 => Just(String::new()),
    ]
}

/// TOML-ish files: tables of key = value lines, with the odd broken line.
fn tomlish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        6 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => header(),
        1 => "[ -~é🦀\t]{0,20}",
    ];
    (
        prop::collection::vec(line, 0..24),
        prop_oneof![Just("\n"), Just("\r\n")],
    )
        .prop_map(|(lines, eol)| lines.join(eol))
}

/// Well-formed files of a few aliases whose names and addresses come from
/// small pools (so duplicates happen), some of them invalid; then, now and
/// then, one character inserted or removed somewhere. This reaches the
/// checks behind the TOML syntax: empty, duplicate and misspelt values.
fn aliases() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("web"),
        Just("db"),
        Just("é-vip🦀"),
        Just("vip\\u001b]0;x\\u0007"),
        Just(""),
        Just("  "),
    ];
    let address = prop_oneof![
        Just("10.0.0.1"),
        Just("10.0.0.2"),
        Just("2001:db8::1"),
        Just("2001:DB8:0::1"),
        Just("10.0.0.1/24"),
        Just("10.0.0.01"),
        Just("not an address"),
        Just("é"),
    ];
    let alias = (
        name,
        address,
        prop::option::of("[a-z é]{0,10}|ops\\\\n|\\\\t"),
    )
        .prop_map(|(name, address, owner)| {
            let mut t = format!("[[alias]]\nname = \"{name}\"\naddress = \"{address}\"\n");
            if let Some(owner) = owner {
                t.push_str(&format!("owner = \"{owner}\"\n"));
            }
            t
        });
    let mutation = prop_oneof![
        3 => Just(None),
        1 => (any::<prop::sample::Index>(), prop_oneof![Just('"'), Just('='), Just('['), Just('\n'), Just('é')])
            .prop_map(|(at, c)| Some((at, Some(c)))),
        1 => any::<prop::sample::Index>().prop_map(|at| Some((at, None))),
    ];
    (prop::collection::vec(alias, 0..5), mutation).prop_map(|(tables, mutation)| {
        let mut chars: Vec<char> = tables.join("\n").chars().collect();
        match mutation {
            Some((at, Some(c))) => chars.insert(at.index(chars.len() + 1), c),
            Some((at, None)) if !chars.is_empty() => {
                chars.remove(at.index(chars.len()));
            }
            _ => {}
        }
        chars.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn alias_tables_never_panic_and_errors_are_located(text in aliases()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_are_located(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn tomlish_text_never_panics_and_errors_are_located(text in tomlish()) {
        check(&text)?;
    }
}

#[test]
fn the_shipped_example_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/aliases.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = parse_config(&text, &path).unwrap();
    assert_eq!(config.aliases().len(), 5);
}
