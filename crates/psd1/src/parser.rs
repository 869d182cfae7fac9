//! Recursive-descent parser for the data subset of PowerShell.
//!
//! Works on a `Vec<char>` so that positions are character indexes; line and
//! column are only computed when an error is reported. Every access is
//! bounds-checked (`peek`), so no input can make it panic, and nesting is
//! bounded by [`MAX_DEPTH`].

use crate::error::Psd1Error;
use crate::value::{Hashtable, Number, Value};

/// Deepest nesting of hashtables, arrays and unary commas accepted.
pub(crate) const MAX_DEPTH: usize = 64;

type Result<T> = std::result::Result<T, Psd1Error>;

/// Parses a whole data file into a single value.
pub(crate) fn parse(text: &str) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
    };
    parser.skip_trivia_and_semicolons()?;
    if parser.at_end() {
        return Err(parser
            .error_here("expected a value such as a hashtable `@{ ... }`, found end of input"));
    }
    let value = parser.parse_expression("a value")?;
    parser.skip_trivia_and_semicolons()?;
    if let Some(c) = parser.peek() {
        return Err(parser.error_here(format!(
            "expected end of input after the value, found {}; a data file holds a single value",
            describe(Some(c))
        )));
    }
    Ok(value)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Describes a character (or end of input) for an error message.
fn describe(c: Option<char>) -> String {
    match c {
        None => "end of input".to_owned(),
        Some('\n' | '\r') => "end of line".to_owned(),
        Some('`') => "a backtick".to_owned(),
        Some(c) if c.is_whitespace() => "whitespace".to_owned(),
        Some(c) if c.is_control() => format!("control character U+{:04X}", u32::from(c)),
        Some(c) => format!("`{c}`"),
    }
}

fn is_single_quote(c: char) -> bool {
    matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}')
}

fn is_double_quote(c: char) -> bool {
    matches!(c, '"' | '\u{201C}' | '\u{201D}' | '\u{201E}')
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_inline_space(c: char) -> bool {
    c.is_whitespace() && !is_newline(c)
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '\\' | '/')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> Psd1Error {
        Psd1Error::at(&self.chars, pos, message)
    }

    fn error_here(&self, message: impl Into<String>) -> Psd1Error {
        self.error_at(self.pos, message)
    }

    /// "line L, column C" of `pos`, for messages that point elsewhere.
    fn where_is(&self, pos: usize) -> String {
        let e = self.error_at(pos, "");
        format!("line {}, column {}", e.line, e.column)
    }

    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error_here(format!(
                "nesting is deeper than {MAX_DEPTH} levels; refusing to parse further"
            )));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    // ----- trivia -----------------------------------------------------------

    /// Skips spaces, tabs, comments and line continuations, stopping at a
    /// newline.
    fn skip_inline(&mut self) -> Result<()> {
        loop {
            match self.peek() {
                Some(c) if is_inline_space(c) => self.pos += 1,
                Some('#') => {
                    while let Some(c) = self.peek() {
                        if is_newline(c) {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                Some('<') if self.peek_at(1) == Some('#') => self.skip_block_comment()?,
                Some('`') if self.peek_at(1).is_some_and(is_newline) => {
                    // Line continuation: backtick, then the newline.
                    self.pos += 1;
                    self.skip_newline();
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_block_comment(&mut self) -> Result<()> {
        let open = self.pos;
        self.pos += 2;
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        open,
                        "unterminated block comment: expected `#>` to close this `<#`",
                    ));
                }
                Some('#') if self.peek_at(1) == Some('>') => {
                    self.pos += 2;
                    return Ok(());
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Consumes one `\n`, `\r\n` or `\r` if present.
    fn skip_newline(&mut self) -> bool {
        match self.peek() {
            Some('\n') => {
                self.pos += 1;
                true
            }
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                true
            }
            _ => false,
        }
    }

    /// Skips whitespace, comments and newlines.
    fn skip_trivia(&mut self) -> Result<()> {
        loop {
            self.skip_inline()?;
            if !self.skip_newline() {
                return Ok(());
            }
        }
    }

    /// Skips whitespace, comments, newlines and `;` statement separators.
    fn skip_trivia_and_semicolons(&mut self) -> Result<()> {
        loop {
            self.skip_trivia()?;
            if self.peek() == Some(';') {
                self.pos += 1;
            } else {
                return Ok(());
            }
        }
    }

    // ----- expressions ------------------------------------------------------

    /// A value, or a comma list of values (which becomes an array).
    /// `what` names the thing expected, for error messages.
    fn parse_expression(&mut self, what: &str) -> Result<Value> {
        let first = self.parse_unary(what)?;
        self.skip_inline()?;
        if self.peek() != Some(',') {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek() == Some(',') {
            self.pos += 1;
            self.skip_trivia()?;
            items.push(self.parse_unary("a value after `,`")?);
            self.skip_inline()?;
        }
        Ok(Value::Array(items))
    }

    /// A primary value, or `,value` (the unary comma: a one-item array).
    fn parse_unary(&mut self, what: &str) -> Result<Value> {
        if self.peek() == Some(',') {
            self.pos += 1;
            self.skip_inline()?;
            return self.nested(|p| {
                let item = p.parse_unary("a value after the unary `,`")?;
                Ok(Value::Array(vec![item]))
            });
        }
        self.parse_primary(what)
    }

    fn parse_primary(&mut self, what: &str) -> Result<Value> {
        let Some(c) = self.peek() else {
            return Err(self.error_here(format!("expected {what}, found end of input")));
        };
        match c {
            '@' => match self.peek_at(1) {
                Some('{') => self.nested(Parser::parse_hashtable),
                Some('(') => self.nested(Parser::parse_array),
                Some(q) if is_single_quote(q) || is_double_quote(q) => self.parse_here_string(),
                other => Err(self.error_at(
                    self.pos + 1,
                    format!(
                        "expected `{{`, `(` or a quote after `@`, found {}",
                        describe(other)
                    ),
                )),
            },
            c if is_single_quote(c) => self.parse_single_quoted().map(Value::String),
            c if is_double_quote(c) => self.parse_double_quoted().map(Value::String),
            '$' => self.parse_variable(),
            c if c.is_ascii_digit() => self.parse_number(),
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.parse_number(),
            '-' | '+'
                if self.peek_at(1).is_some_and(|d| d.is_ascii_digit())
                    || (self.peek_at(1) == Some('.')
                        && self.peek_at(2).is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.parse_number()
            }
            '(' => Err(self.error_here(format!(
                "expected {what}, found `(`: parenthesised expressions are not allowed in a data file"
            ))),
            '[' => Err(self.error_here(format!(
                "expected {what}, found `[`: type casts and type literals are not allowed in a data file"
            ))),
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                let mut end = start;
                while self.chars.get(end).copied().is_some_and(is_word_char) {
                    end += 1;
                }
                let word: String = self.chars[start..end].iter().collect();
                Err(self.error_here(format!(
                    "expected {what}, found bare word `{word}`: quote strings ('...' or \"...\"); commands are not allowed in a data file"
                )))
            }
            _ => Err(self.error_here(format!("expected {what}, found {}", describe(Some(c))))),
        }
    }

    // ----- hashtables and arrays --------------------------------------------

    fn parse_hashtable(&mut self) -> Result<Value> {
        let open = self.pos;
        self.pos += 2; // `@{`
        let mut table = Hashtable::new();
        loop {
            self.skip_trivia_and_semicolons()?;
            match self.peek() {
                None => {
                    return Err(self.error_here(format!(
                        "expected `}}` to close the hashtable opened at {}, found end of input",
                        self.where_is(open)
                    )));
                }
                Some('}') => {
                    self.pos += 1;
                    return Ok(Value::Hashtable(table));
                }
                Some(_) => {}
            }
            let key_pos = self.pos;
            let key = self.parse_key()?;
            self.skip_inline()?;
            if self.peek() != Some('=') {
                return Err(self.error_here(format!(
                    "expected `=` after key {key}, found {}",
                    describe(self.peek())
                )));
            }
            self.pos += 1;
            self.skip_trivia()?;
            if matches!(self.peek(), None | Some('}' | ';')) {
                return Err(self.error_here(format!(
                    "expected a value for key {key}, found {}",
                    describe(self.peek())
                )));
            }
            let value = self.parse_expression(&format!("a value for key {key}"))?;
            if let Some(existing) = table.original_key(&key) {
                return Err(self.error_at(
                    key_pos,
                    format!(
                        "duplicate key {key} (keys are case-insensitive; {existing} is already set)"
                    ),
                ));
            }
            table.insert(key.clone(), value);
            self.skip_inline()?;
            match self.peek() {
                None | Some('\n' | '\r' | ';' | '}') => {}
                other => {
                    return Err(self.error_here(format!(
                        "expected a newline, `;` or `}}` after the value of key {key}, found {}",
                        describe(other)
                    )));
                }
            }
        }
    }

    /// A hashtable key: a bare name or a quoted string.
    fn parse_key(&mut self) -> Result<String> {
        match self.peek() {
            Some(c) if is_single_quote(c) => self.parse_single_quoted(),
            Some(c) if is_double_quote(c) => self.parse_double_quoted(),
            Some(c) if is_key_char(c) => {
                let start = self.pos;
                while self.peek().is_some_and(is_key_char) {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
            other => Err(self.error_here(format!(
                "expected a key (a name or a quoted string) or `}}`, found {}",
                describe(other)
            ))),
        }
    }

    fn parse_array(&mut self) -> Result<Value> {
        let open = self.pos;
        self.pos += 2; // `@(`
        let mut items = Vec::new();
        loop {
            self.skip_trivia_and_semicolons()?;
            match self.peek() {
                None => {
                    return Err(self.error_here(format!(
                        "expected `)` to close the array opened at {}, found end of input",
                        self.where_is(open)
                    )));
                }
                Some(')') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => {}
            }
            // Like PowerShell's `@( )`, each statement's output is enumerated
            // one level: `@(1, 2)` and `@(@(1, 2))` are both two items.
            match self.parse_expression("an array item or `)`")? {
                Value::Array(inner) => items.extend(inner),
                other => items.push(other),
            }
            self.skip_inline()?;
            match self.peek() {
                None | Some('\n' | '\r' | ';' | ')') => {}
                other => {
                    return Err(self.error_here(format!(
                        "expected `,`, a newline or `)` after an array item, found {}",
                        describe(other)
                    )));
                }
            }
        }
    }

    // ----- strings ----------------------------------------------------------

    /// `'...'`, with `''` standing for one quote. CRLF becomes LF.
    fn parse_single_quoted(&mut self) -> Result<String> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        open,
                        "unterminated string: expected a closing `'` for the string starting here",
                    ));
                }
                Some(c) if is_single_quote(c) => {
                    if self.peek_at(1).is_some_and(is_single_quote) {
                        out.push(c);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(out);
                    }
                }
                Some('\r') if self.peek_at(1) == Some('\n') => {
                    out.push('\n');
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `"..."`, with backtick escapes and `""` standing for one quote.
    /// `$name` stays literal; `$(...)` is refused. CRLF becomes LF.
    fn parse_double_quoted(&mut self) -> Result<String> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error_at(
                        open,
                        "unterminated string: expected a closing `\"` for the string starting here",
                    ));
                }
                Some(c) if is_double_quote(c) => {
                    if self.peek_at(1).is_some_and(is_double_quote) {
                        out.push(c);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(out);
                    }
                }
                Some('`') => {
                    if self.peek_at(1).is_none() {
                        return Err(self.error_at(
                            open,
                            "unterminated string: expected a closing `\"` for the string starting here",
                        ));
                    }
                    self.escape(&mut out)?;
                }
                Some('$') => self.dollar_in_string(&mut out)?,
                Some('\r') if self.peek_at(1) == Some('\n') => {
                    out.push('\n');
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// At a `$` inside an expandable string: refuse `$(`, keep anything else.
    fn dollar_in_string(&mut self, out: &mut String) -> Result<()> {
        if self.peek_at(1) == Some('(') {
            return Err(self.error_here(
                "subexpression `$(...)` is not allowed in a data file; escape the `$` with a backtick or use a single-quoted string",
            ));
        }
        out.push('$');
        self.pos += 1;
        Ok(())
    }

    /// At a backtick inside an expandable string (the next char exists).
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let at = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else {
            return Err(self.error_at(at, "expected a character after the escape backtick"));
        };
        self.pos += 1;
        let ch = match c {
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'e' => '\u{1b}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            'u' if self.peek() == Some('{') => return self.unicode_escape(at, out),
            '\r' => {
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                '\n'
            }
            other => other,
        };
        out.push(ch);
        Ok(())
    }

    /// `` `u{XXXX} ``: the backtick is at `at`, `self.pos` is at `{`.
    fn unicode_escape(&mut self, at: usize, out: &mut String) -> Result<()> {
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) && self.pos - start < 6 {
            self.pos += 1;
        }
        let hex: String = self.chars[start..self.pos].iter().collect();
        if hex.is_empty() || self.peek() != Some('}') {
            return Err(self.error_at(
                at,
                "invalid unicode escape: expected `u{` then 1 to 6 hex digits then `}`",
            ));
        }
        self.pos += 1;
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(ch) => {
                out.push(ch);
                Ok(())
            }
            None => Err(self.error_at(
                at,
                format!("invalid unicode escape: U+{hex} is not a valid character"),
            )),
        }
    }

    /// `@'...'@` and `@"..."@`: the header quote must end its line and the
    /// closing quote must start a line; the content is what lies between
    /// (without the final line break). CRLF becomes LF.
    fn parse_here_string(&mut self) -> Result<Value> {
        let open = self.pos;
        let Some(quote) = self.peek_at(1) else {
            return Err(self.error_here("expected a here-string quote after `@`"));
        };
        let double = is_double_quote(quote);
        let closing = if double { "\"@" } else { "'@" };
        self.pos += 2;
        while self.peek().is_some_and(is_inline_space) {
            self.pos += 1;
        }
        if !self.skip_newline() {
            if self.at_end() {
                return Err(self.error_at(
                    open,
                    format!("unterminated here-string: expected a line starting with `{closing}`"),
                ));
            }
            return Err(self.error_here(format!(
                "expected a line break after the here-string header `@{quote}`, found {}; the text starts on the next line",
                describe(self.peek())
            )));
        }
        let content_start = self.pos;
        let mut line_start = self.pos;
        let content_end;
        loop {
            // At the start of a line: is it the closing line?
            let first = self.chars.get(line_start).copied();
            let second = self.chars.get(line_start + 1).copied();
            let is_close = match first {
                Some(q) if double => is_double_quote(q),
                Some(q) => is_single_quote(q),
                None => false,
            } && second == Some('@');
            if is_close {
                // Drop the line break that precedes the closing line.
                let mut end = line_start;
                if end > content_start && self.chars.get(end - 1) == Some(&'\n') {
                    end -= 1;
                }
                if end > content_start && self.chars.get(end - 1) == Some(&'\r') {
                    end -= 1;
                }
                content_end = end;
                self.pos = line_start + 2;
                break;
            }
            // Move to the next line.
            self.pos = line_start;
            while self.peek().is_some_and(|c| !is_newline(c)) {
                self.pos += 1;
            }
            if !self.skip_newline() {
                return Err(self.error_at(
                    open,
                    format!(
                        "unterminated here-string: expected a line starting with `{closing}` to close the here-string starting here"
                    ),
                ));
            }
            line_start = self.pos;
        }
        let after = self.pos;
        let text = if double {
            self.expand_here_string(content_start, content_end)?
        } else {
            normalize_newlines(&self.chars[content_start..content_end])
        };
        self.pos = after;
        Ok(Value::String(text))
    }

    /// Applies backtick escapes to `chars[start..end]` (a `@"..."@` body),
    /// refusing `$(`. Quotes are literal in here-strings.
    fn expand_here_string(&mut self, start: usize, end: usize) -> Result<String> {
        let mut out = String::new();
        self.pos = start;
        while self.pos < end {
            match self.peek() {
                Some('`') if self.pos + 1 < end => self.escape(&mut out)?,
                Some('$') => self.dollar_in_string(&mut out)?,
                Some('\r') if self.peek_at(1) == Some('\n') && self.pos + 1 < end => {
                    out.push('\n');
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
                None => break,
            }
        }
        Ok(out)
    }

    // ----- variables and numbers ------------------------------------------------

    fn parse_variable(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek_at(1) == Some('(') {
            return Err(self.error_here(
                "subexpression `$(...)` is not allowed in a data file (only $true, $false and $null)",
            ));
        }
        self.pos += 1;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start + 1..self.pos].iter().collect();
        match name.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "null" => Ok(Value::Null),
            _ => {
                let shown = if name.is_empty() {
                    "`$`".to_owned()
                } else {
                    format!("`${name}`")
                };
                Err(self.error_at(
                    start,
                    format!(
                        "variable {shown} is not allowed in a data file (only $true, $false and $null)"
                    ),
                ))
            }
        }
    }

    /// Decimal and hex integers, decimals, exponents, an optional sign, the
    /// `l`/`d` type suffixes and the `kb`..`pb` multipliers.
    fn parse_number(&mut self) -> Result<Value> {
        let start = self.pos;
        let negative = self.peek() == Some('-');
        if matches!(self.peek(), Some('-' | '+')) {
            self.pos += 1;
        }
        let is_hex = self.peek() == Some('0') && matches!(self.peek_at(1), Some('x' | 'X'));
        let mut is_integer = true;
        let magnitude: Option<i128>;
        if is_hex {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                self.pos += 1;
            }
            if self.pos == digits_start {
                return Err(self.error_here(format!(
                    "expected hex digits after `0x`, found {}",
                    describe(self.peek())
                )));
            }
            let digits: String = self.chars[digits_start..self.pos].iter().collect();
            magnitude = i128::from_str_radix(&digits, 16).ok();
            if magnitude.is_none_or(|m| m > i128::from(u64::MAX)) {
                return Err(self.error_at(start, "hex number is too large"));
            }
        } else {
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let int_digits: String = self.chars[digits_start..self.pos].iter().collect();
            magnitude = int_digits.parse::<i128>().ok();
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                is_integer = false;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                    let mut end = self.pos;
                    while self
                        .chars
                        .get(end)
                        .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                    {
                        end += 1;
                    }
                    let text: String = self.chars[start..end].iter().collect();
                    return Err(self.error_at(
                        start,
                        format!(
                            "unquoted version number {text}: quote it as a string, like '{text}'"
                        ),
                    ));
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
                if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                    is_integer = false;
                    self.pos += 1 + sign;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                }
            }
        }
        let numeric_end = self.pos;
        // Type suffix.
        let mut long_suffix = false;
        match self.peek() {
            Some('l' | 'L') if !self.peek_at(1).is_some_and(|c| c.is_alphanumeric()) => {
                long_suffix = true;
                self.pos += 1;
            }
            Some('d' | 'D') if !is_hex => {
                is_integer = false;
                self.pos += 1;
            }
            _ => {}
        }
        // Multiplier.
        let mut multiplier: i128 = 1;
        if let (Some(a), Some(b)) = (self.peek(), self.peek_at(1))
            && matches!(b, 'b' | 'B')
        {
            let power = match a.to_ascii_lowercase() {
                'k' => Some(1),
                'm' => Some(2),
                'g' => Some(3),
                't' => Some(4),
                'p' => Some(5),
                _ => None,
            };
            if let Some(power) = power {
                multiplier = 1024_i128.pow(power);
                self.pos += 2;
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if let Some(c) = self.peek()
            && (c.is_alphanumeric() || c == '_' || c == '.' || c == '$')
        {
            return Err(self.error_here(format!(
                "expected a separator after the number {text}, found {}",
                describe(Some(c))
            )));
        }
        let numeric: String = self.chars[start..numeric_end].iter().collect();
        // Hex literals are bit patterns, as in PowerShell: one that fits in
        // 32 bits is an Int32 (0xFFFFFFFF is -1), otherwise an Int64.
        let magnitude = match magnitude {
            Some(m) if is_hex && m <= i128::from(u32::MAX) && !long_suffix => {
                Some(i128::from(m as u32 as i32))
            }
            Some(m) if is_hex => Some(i128::from(m as u64 as i64)),
            other => other,
        };
        if is_integer
            && let Some(m) = magnitude.and_then(|m| m.checked_mul(multiplier))
            && let Ok(i) = i64::try_from(if negative { -m } else { m })
        {
            return Ok(Value::Integer(i));
        }
        let base: f64 = if is_hex {
            magnitude.unwrap_or(0) as f64 * if negative { -1.0 } else { 1.0 }
        } else {
            numeric
                .parse()
                .map_err(|_| self.error_at(start, format!("invalid number {text}")))?
        };
        Ok(Value::Number(Number::new(text, base * multiplier as f64)))
    }
}

/// Copies chars, turning CRLF into LF.
fn normalize_newlines(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
            out.push('\n');
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
