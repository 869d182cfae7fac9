//! A small, lenient JSON reader for walking into variable values, accepting
//! what Octostache's Newtonsoft.Json accepts in practice: unquoted property
//! names (`{Name: "x"}`), single-quoted strings and trailing commas. Objects keep
//! their document order.

use crate::filters::format_double;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The literal as written, and whether it is an integer.
    Number(String, bool),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Cheap test: could this text be a JSON object or array?
pub(crate) fn may_be_json(s: &str) -> bool {
    matches!(s.trim_start().chars().next(), Some('{' | '['))
}

/// Parses an object or array (anything else is `None`).
pub(crate) fn parse(s: &str) -> Option<Json> {
    if !may_be_json(s) {
        return None;
    }
    let mut r = Reader {
        s: s.as_bytes(),
        src: s,
        pos: 0,
        depth: 0,
    };
    let v = r.value()?;
    r.ws();
    if r.pos != r.s.len() {
        return None;
    }
    Some(v)
}

impl Json {
    /// The text a JSON value gives as a variable value (Octostache's
    /// `ConvertJTokenToBinding`): scalars as text (`null` as empty), objects and
    /// arrays as compact JSON.
    pub(crate) fn to_binding_text(&self) -> String {
        match self {
            Json::Null => String::new(),
            Json::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Json::Number(n, true) => n.clone(),
            Json::Number(n, false) => n.parse::<f64>().map_or(n.clone(), format_double),
            Json::Str(s) => s.clone(),
            Json::Array(_) | Json::Object(_) => {
                let mut out = String::new();
                self.write(&mut out);
                out
            }
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n, true) => out.push_str(n),
            Json::Number(n, false) => {
                let t = n.parse::<f64>().map_or(n.clone(), format_double);
                out.push_str(&t);
                if !t.contains(['.', 'E', 'e', 'N', 'I', '∞']) {
                    out.push_str(".0");
                }
            }
            Json::Str(s) => write_str(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(props) => {
                out.push('{');
                for (i, (k, v)) in props.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

const MAX_DEPTH: usize = 128;

struct Reader<'a> {
    s: &'a [u8],
    src: &'a str,
    pos: usize,
    depth: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && (self.s[self.pos] as char).is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' | b'\'' => self.string().map(Json::Str),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                let word = self.word();
                match word.as_str() {
                    "null" | "undefined" => Some(Json::Null),
                    "true" => Some(Json::Bool(true)),
                    "false" => Some(Json::Bool(false)),
                    _ => None,
                }
            }
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Option<Json>) -> Option<Json> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.src
            .get(start..self.pos)
            .unwrap_or_default()
            .to_string()
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.pos;
        let mut integer = true;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while let Some(c) = self.peek() {
            match c {
                b'0'..=b'9' => {}
                b'.' | b'e' | b'E' | b'+' | b'-' => integer = false,
                _ => break,
            }
            self.pos += 1;
        }
        let lit = self.src.get(start..self.pos)?;
        lit.parse::<f64>().ok()?;
        Some(Json::Number(lit.to_string(), integer))
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = self.src.get(self.pos..)?;
            let c = rest.chars().next()?;
            self.pos += c.len_utf8();
            match c {
                c if c as u32 == u32::from(quote) => return Some(out),
                '\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = self.src.get(self.pos..self.pos + 4)?;
                            let code = u32::from_str_radix(hex, 16).ok()?;
                            self.pos += 4;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(other as char),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn array(&mut self) -> Option<Json> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            match self.peek()? {
                b']' => {
                    self.pos += 1;
                    return Some(Json::Array(items));
                }
                _ => {
                    items.push(self.value()?);
                    self.ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b']' => {}
                        _ => return None,
                    }
                }
            }
        }
    }

    fn object(&mut self) -> Option<Json> {
        self.pos += 1;
        let mut props = Vec::new();
        loop {
            self.ws();
            match self.peek()? {
                b'}' => {
                    self.pos += 1;
                    return Some(Json::Object(props));
                }
                b'"' | b'\'' => {
                    let k = self.string()?;
                    props.push((k, self.after_key()?));
                }
                _ => {
                    let k = self.word();
                    if k.is_empty() {
                        return None;
                    }
                    props.push((k, self.after_key()?));
                }
            }
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {}
                _ => return None,
            }
        }
    }

    fn after_key(&mut self) -> Option<Json> {
        self.ws();
        if self.peek()? != b':' {
            return None;
        }
        self.pos += 1;
        self.value()
    }
}
