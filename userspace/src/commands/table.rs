//! Plain-text tables for terminals and for grep, and the escaping that
//! keeps text from the alias file or the kernel inert on a terminal.

use std::{borrow::Cow, fmt::Write as _};

/// `text` with every character that a terminal would act on instead of
/// print written as a Rust escape (`\n`, `\t`, `\u{1b}`): C0 and C1
/// controls (ESC starts every ANSI sequence, CSI is U+009B) and the
/// bidirectional overrides and isolates that reorder what follows them.
/// Alias names, owners and purposes come from a file anyone with write
/// access may have edited, and interface labels from the kernel, which
/// takes ESC, tab and newline in a label (`ip addr add … label
/// "lo<ESC>[2J"` works); every terminal output passes them through here.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `c` acts on a terminal or on the text around it.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Renders `rows` (the first is the header) in columns two spaces apart;
/// columns whose `right[i]` is true (numbers) are right-aligned. Every cell
/// is escaped, so a row holds one line however hostile its text.
pub fn render<const N: usize>(rows: &[[String; N]], right: [bool; N]) -> String {
    let rows: Vec<[Cow<'_, str>; N]> = rows
        .iter()
        .map(|row| std::array::from_fn(|i| escape(&row[i])))
        .collect();
    let mut width = [0; N];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let w = width[i];
            let cell: &str = cell;
            let _ = if right[i] {
                write!(line, "{cell:>w$}")
            } else {
                write!(line, "{cell:<w$}")
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        // (text, shown)
        let cases = [
            ("shop-tls", "shop-tls"),
            ("é-vip🦀 eth0:1", "é-vip🦀 eth0:1"),
            ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
            ("\u{1b}[31mred\u{1b}[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("\u{1b}]0;owned\u{7}", "\\u{1b}]0;owned\\u{7}"),
            ("\u{9b}2J", "\\u{9b}2J"),
            ("\u{7f}\u{0}", "\\u{7f}\\0"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
        ];
        for (text, shown) in cases {
            assert_eq!(escape(text), shown, "{text:?}");
            assert!(!escape(text).chars().any(super::needs_escape));
        }
    }

    #[test]
    fn a_hostile_cell_stays_on_its_row() {
        let rows = [
            ["NAME".to_string(), "N".to_string()],
            ["a\n\u{1b}[2Jb".to_string(), "1".to_string()],
        ];
        assert_eq!(
            super::render(&rows, [false, true]),
            "NAME           N\na\\n\\u{1b}[2Jb  1\n"
        );
    }

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let rows = [
            ["NAME".to_string(), "N".to_string(), "NOTE".to_string()],
            ["a".to_string(), "1000".to_string(), String::new()],
            ["longer".to_string(), "7".to_string(), "x".to_string()],
        ];
        assert_eq!(
            super::render(&rows, [false, true, false]),
            "NAME       N  NOTE\na       1000\nlonger     7  x\n"
        );
    }
}
