//! The parse error: a message pinned to a line and column of the input.

/// A syntax error in a PowerShell data file.
///
/// `line` and `column` are 1-based; columns count characters (not bytes),
/// a tab counts as one column and a leading byte-order mark is not counted.
/// Displays as `line L, column C: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct Psd1Error {
    /// 1-based line of the offending character.
    pub line: usize,
    /// 1-based column (in characters) of the offending character.
    pub column: usize,
    /// What was wrong, usually phrased as what was expected.
    pub message: String,
}

impl Psd1Error {
    /// Builds an error at `pos`, a character index into `chars`.
    pub(crate) fn at(chars: &[char], pos: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(chars, pos);
        Psd1Error {
            line,
            column,
            message: message.into(),
        }
    }
}

/// Converts a character index into a 1-based (line, column) pair.
///
/// `\n`, `\r\n` and a lone `\r` each end a line.
fn line_column(chars: &[char], pos: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    let end = pos.min(chars.len());
    let mut i = 0;
    while i < end {
        match chars[i] {
            '\n' => {
                line += 1;
                column = 1;
            }
            '\r' => {
                if chars.get(i + 1) == Some(&'\n') {
                    if i + 1 == end {
                        // Position is the `\n` of a CRLF: same column as the `\r`.
                        break;
                    }
                    i += 1;
                }
                line += 1;
                column = 1;
            }
            _ => column += 1,
        }
        i += 1;
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn lines_and_columns() {
        let chars: Vec<char> = "ab\ncd\r\nef\rg".chars().collect();
        assert_eq!(line_column(&chars, 0), (1, 1));
        assert_eq!(line_column(&chars, 1), (1, 2));
        assert_eq!(line_column(&chars, 2), (1, 3));
        assert_eq!(line_column(&chars, 3), (2, 1));
        assert_eq!(line_column(&chars, 5), (2, 3));
        assert_eq!(line_column(&chars, 6), (2, 3));
        assert_eq!(line_column(&chars, 7), (3, 1));
        assert_eq!(line_column(&chars, 10), (4, 1));
        assert_eq!(line_column(&chars, 99), (4, 2));
    }
}
