//! Plain-text tables for terminals and for grep.

use std::fmt::Write as _;

/// Renders `rows` (the first is the header) in columns two spaces apart;
/// columns whose `right[i]` is true (numbers) are right-aligned.
pub fn render<const N: usize>(rows: &[[String; N]], right: [bool; N]) -> String {
    let mut width = [0; N];
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let w = width[i];
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
