//! The built-in filters (Octostache's `BuiltInFunctions.cs` and
//! `Functions/*.cs`). Each takes the value on its left (`None` when that is an
//! undefined variable or absent, as in `#{ | NowDate}`) and its options, and
//! returns `None` when it cannot use them, which makes the evaluator echo the
//! token.

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{Datelike, Duration, Months};
use regex::Regex;

use crate::EvalContext;
use crate::netfmt::{self, DateKind, NetDate};

/// Every filter's name, lowercase (names are case-insensitive): the one
/// list the user's manual is checked against (`crates/tako/tests/manual.rs`).
/// A name missing here is unknown to [`invoke`].
pub const FILTERS: &[&str] = &[
    "tolower",
    "toupper",
    "tobase64",
    "frombase64",
    "htmlescape",
    "xmlescape",
    "jsonescape",
    "yamlsinglequoteescape",
    "yamldoublequoteescape",
    "propertieskeyescape",
    "propertiesvalueescape",
    "uriescape",
    "uridataescape",
    "markdown",
    "markdowntohtml",
    "nowdate",
    "nowdateutc",
    "format",
    "match",
    "startswith",
    "endswith",
    "contains",
    "replace",
    "substring",
    "truncate",
    "trim",
    "indent",
    "uripart",
    "versionmajor",
    "versionminor",
    "versionpatch",
    "versionrevision",
    "versionprerelease",
    "versionprereleaseprefix",
    "versionprereleasecounter",
    "versionmetadata",
    "append",
    "prepend",
    "md5",
    "sha1",
    "sha256",
    "sha384",
    "sha512",
    "null",
    "addseconds",
    "addminutes",
    "addhours",
    "adddays",
    "addweeks",
    "addmonths",
    "addyears",
    "addtimespan",
];

/// The outcome of calling a filter by name.
pub(crate) enum Invoke {
    /// No filter has that name.
    Unknown,
    /// The filter's result (`None`: it cannot use its input or options).
    Done(Option<String>),
}

/// Calls the filter `name` (case-insensitive).
pub(crate) fn invoke(name: &str, arg: Option<&str>, opts: &[String], ctx: &EvalContext) -> Invoke {
    let lower = name.to_ascii_lowercase();
    if !FILTERS.contains(&lower.as_str()) {
        return Invoke::Unknown;
    }
    let r = match lower.as_str() {
        "tolower" => no_opts(opts, arg).map(str::to_lowercase),
        "toupper" => no_opts(opts, arg).map(str::to_uppercase),
        "tobase64" => to_base64(arg, opts),
        "frombase64" => from_base64(arg, opts),
        "htmlescape" => no_opts(opts, arg).map(|a| escape(a, html_entity)),
        "xmlescape" => no_opts(opts, arg).map(|a| escape(a, xml_entity)),
        "jsonescape" => no_opts(opts, arg).map(|a| escape(a, json_entity)),
        "yamlsinglequoteescape" => no_opts(opts, arg).map(yaml_single),
        "yamldoublequoteescape" => no_opts(opts, arg).map(yaml_double),
        "propertieskeyescape" => no_opts(opts, arg).map(|a| properties(a, true)),
        "propertiesvalueescape" => no_opts(opts, arg).map(|a| properties(a, false)),
        "uriescape" => no_opts(opts, arg).map(|a| uri_escape(a, false)),
        "uridataescape" => no_opts(opts, arg).map(|a| uri_escape(a, true)),
        "markdown" | "markdowntohtml" => no_opts(opts, arg).map(markdown),
        "nowdate" => now_date(arg, opts, ctx, false),
        "nowdateutc" => now_date(arg, opts, ctx, true),
        "format" => format(arg, opts, ctx),
        "match" => one_opt(arg, opts)
            .and_then(|(a, o)| Regex::new(o).ok().map(|r| bool_text(r.is_match(a)))),
        "startswith" => one_opt(arg, opts).map(|(a, o)| bool_text(a.starts_with(o))),
        "endswith" => one_opt(arg, opts).map(|(a, o)| bool_text(a.ends_with(o))),
        "contains" => one_opt(arg, opts).map(|(a, o)| bool_text(a.contains(o))),
        "replace" => replace(arg, opts),
        "substring" => substring(arg, opts),
        "truncate" => truncate(arg, opts),
        "trim" => trim(arg, opts),
        "indent" => indent(arg, opts),
        "uripart" => arg.map(|a| netfmt::uri_part(a, opts)),
        "versionmajor" => arg.map(|a| version(a).major),
        "versionminor" => arg.map(|a| version(a).minor),
        "versionpatch" => arg.map(|a| version(a).patch),
        "versionrevision" => arg.map(|a| version(a).revision),
        "versionprerelease" => arg.map(|a| version(a).prerelease),
        "versionprereleaseprefix" => arg.map(|a| version(a).prefix),
        "versionprereleasecounter" => arg.map(|a| version(a).counter),
        "versionmetadata" => arg.map(|a| version(a).metadata),
        "append" => append(arg, opts, true),
        "prepend" => append(arg, opts, false),
        "md5" => hash::<md5::Md5>(arg, opts),
        "sha1" => hash::<sha1::Sha1>(arg, opts),
        "sha256" => hash::<sha2::Sha256>(arg, opts),
        "sha384" => hash::<sha2::Sha384>(arg, opts),
        "sha512" => hash::<sha2::Sha512>(arg, opts),
        "null" => None,
        "addseconds" => add_duration(arg, opts, ctx, 1_000),
        "addminutes" => add_duration(arg, opts, ctx, 60_000),
        "addhours" => add_duration(arg, opts, ctx, 3_600_000),
        "adddays" => add_duration(arg, opts, ctx, 86_400_000),
        "addweeks" => add_duration(arg, opts, ctx, 7 * 86_400_000),
        "addmonths" => add_months(arg, opts, ctx, 1),
        "addyears" => add_months(arg, opts, ctx, 12),
        "addtimespan" => add_timespan(arg, opts, ctx),
        _ => return Invoke::Unknown,
    };
    Invoke::Done(r)
}

fn no_opts<'a>(opts: &[String], arg: Option<&'a str>) -> Option<&'a str> {
    if opts.is_empty() { arg } else { None }
}

fn one_opt<'a>(arg: Option<&'a str>, opts: &'a [String]) -> Option<(&'a str, &'a str)> {
    match (arg, opts) {
        (Some(a), [o]) => Some((a, o.as_str())),
        _ => None,
    }
}

fn bool_text(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// .NET's `Int32.TryParse` (NumberStyles.Integer).
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let v: i64 = t.parse().ok()?;
    if i32::try_from(v).is_ok() {
        Some(v)
    } else {
        None
    }
}

/// .NET's `Double.TryParse` (current culture en-US: thousands separators allowed).
pub(crate) fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim().replace(',', "");
    if t.is_empty() {
        return None;
    }
    match t.as_str() {
        "NaN" => return Some(f64::NAN),
        "Infinity" | "∞" => return Some(f64::INFINITY),
        "-Infinity" | "-∞" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
    {
        return None;
    }
    t.parse().ok()
}

/// A double as .NET Core's `double.ToString()` writes it: the shortest
/// round-trip digits, in exponent form from 1E+15 and below 1E-05.
pub(crate) fn format_double(v: f64) -> String {
    netfmt::format_double_general(v)
}

// ---- encodings ------------------------------------------------------------------------

fn encode(text: &str, encoding: &str) -> Option<Vec<u8>> {
    match encoding.to_ascii_lowercase().as_str() {
        "utf8" | "utf-8" => Some(text.as_bytes().to_vec()),
        "unicode" => Some(text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok(),
        _ => None,
    }
}

fn to_base64(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    if opts.len() > 1 {
        return None;
    }
    let enc = opts.first().map_or("utf8", String::as_str);
    if enc.eq_ignore_ascii_case("base64") {
        return None;
    }
    Some(base64::engine::general_purpose::STANDARD.encode(encode(arg, enc)?))
}

fn from_base64(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    if opts.len() > 1 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(arg.trim())
        .ok()?;
    match opts
        .first()
        .map_or("utf8".to_string(), |o| o.to_ascii_lowercase())
        .as_str()
    {
        "utf8" | "utf-8" => Some(String::from_utf8_lossy(&bytes).into_owned()),
        "unicode" => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

fn hash<D: md5::Digest>(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    let positive = |s: &str| parse_int(s).filter(|&n| n > 0);
    let (encoding, size) = match opts {
        [] => ("utf8", None),
        [a] => match positive(a) {
            Some(n) => ("utf8", Some(n)),
            None => (a.as_str(), None),
        },
        [a, b] => match positive(a) {
            Some(n) => (b.as_str(), Some(n)),
            None => (a.as_str(), Some(positive(b)?)),
        },
        _ => return None,
    };
    let bytes = encode(arg, encoding)?;
    let digest = D::digest(&bytes);
    let size = size.map_or(digest.len(), |n| {
        usize::try_from(n).unwrap_or(usize::MAX).min(digest.len())
    });
    Some(hex::encode(&digest[..size]))
}

// ---- escaping -----------------------------------------------------------------------------

fn escape(s: &str, map: fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match map(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
    }
    out
}

fn html_entity(c: char) -> Option<&'static str> {
    match c {
        '/' => Some("&#x2F;"),
        c => xml_entity(c),
    }
}

fn xml_entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        _ => None,
    }
}

fn json_entity(c: char) -> Option<&'static str> {
    match c {
        '"' => Some("\\\""),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        '\n' => Some("\\n"),
        '\\' => Some("\\\\"),
        _ => None,
    }
}

fn yaml_single(s: &str) -> String {
    // A run of newlines gains one more newline (a single newline would read as a
    // space): `\r\n` runs gain `\r\n`, `\n` runs gain `\n` (TextEscapeFunctions.cs).
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let doubled = match RE.get_or_init(|| Regex::new(r"(?:\r?\n)+").ok()) {
        Some(re) => re
            .replace_all(s, |c: &regex::Captures<'_>| {
                let m = &c[0];
                let nl = if m.starts_with('\r') { "\r\n" } else { "\n" };
                format!("{nl}{m}")
            })
            .into_owned(),
        None => s.to_string(),
    };
    doubled.replace('\'', "''")
}

fn unicode_escape(c: char, out: &mut String) {
    let mut buf = [0u16; 2];
    for u in c.encode_utf16(&mut buf) {
        out.push_str(&format!("\\u{u:04x}"));
    }
}

fn yaml_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            ' '..='~' => out.push(c),
            c => unicode_escape(c, &mut out),
        }
    }
    out
}

fn properties(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if key || i == 0 => out.push_str("\\ "),
            ':' if key => out.push_str("\\:"),
            '=' if key => out.push_str("\\="),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0xFF => out.push(c),
            c => unicode_escape(c, &mut out),
        }
    }
    out
}

/// `Uri.EscapeDataString` (`data`) or `Uri.EscapeUriString`.
fn uri_escape(s: &str, data: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let keep = c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '.' | '~')
            || (!data
                && matches!(
                    c,
                    '!' | '#'
                        | '$'
                        | '&'
                        | '\''
                        | '('
                        | ')'
                        | '*'
                        | '+'
                        | ','
                        | '/'
                        | ':'
                        | ';'
                        | '='
                        | '?'
                        | '@'
                        | '['
                        | ']'
                ));
        if keep {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn markdown(s: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    static AUTOLINK: OnceLock<Option<Regex>> = OnceLock::new();
    let text = s.trim();
    // Markdig's UseAutoLinks: bare http(s) URLs become links.
    let text = match AUTOLINK
        .get_or_init(|| Regex::new(r#"(^|[\s(])((?:https?|ftp)://[^\s<>()\[\]]+)"#).ok())
    {
        Some(re) => re.replace_all(text, "$1<$2>").into_owned(),
        None => text.to_string(),
    };
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut out = String::new();
    html::push_html(&mut out, Parser::new_ext(&text, options));
    // Markdig writes every table element on its own line.
    if out.contains("<table>") {
        for tag in [
            "<table>", "<thead>", "</thead>", "<tbody>", "</tbody>", "<tr>", "</tr>", "</th>",
            "</td>",
        ] {
            out = out.replace(tag, &format!("{tag}\n"));
        }
        while out.contains("\n\n") {
            out = out.replace("\n\n", "\n");
        }
    }
    out.push('\n');
    out
}

// ---- text manipulation ---------------------------------------------------------------------

fn replace(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    let pattern = opts.first()?;
    let replacement = opts.get(1).map_or("", String::as_str);
    match Regex::new(pattern) {
        Ok(re) => Some(
            re.replace_all(arg, net_replacement(replacement).as_str())
                .into_owned(),
        ),
        Err(e) => Some(format!(
            "[Replace error: {}]",
            e.to_string()
                .lines()
                .last()
                .unwrap_or("invalid pattern")
                .trim()
        )),
    }
}

/// Converts a .NET regex replacement (`$1`, `${name}`, `$$`, `$&`) to the
/// `regex` crate's syntax (which would read `$1a` as a group named `1a`).
fn net_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some(d) if d.is_ascii_digit() => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            Some('&') => {
                chars.next();
                out.push_str("${0}");
            }
            Some('$') => {
                chars.next();
                out.push_str("$$");
            }
            Some('{') => out.push('$'),
            _ => out.push_str("$$"),
        }
    }
    out
}

fn substring(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    let nums: Vec<i64> = opts.iter().map(|o| parse_int(o)).collect::<Option<_>>()?;
    if nums.is_empty() || nums.len() > 2 || nums.iter().any(|&n| n < 0) {
        return None;
    }
    let chars: Vec<char> = arg.chars().collect();
    let len = i64::try_from(chars.len()).ok()?;
    let (start, count) = if nums.len() == 1 {
        (0, nums[0])
    } else {
        (nums[0], nums[1])
    };
    if start + count > len {
        return None;
    }
    let (start, count) = (usize::try_from(start).ok()?, usize::try_from(count).ok()?);
    Some(chars[start..start + count].iter().collect())
}

fn truncate(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    let n = usize::try_from(parse_int(opts.first()?)?).ok()?;
    let chars: Vec<char> = arg.chars().collect();
    Some(if n < chars.len() {
        format!("{}...", chars[..n].iter().collect::<String>())
    } else {
        arg.to_string()
    })
}

fn trim(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    match opts.first().map(|o| o.to_lowercase()) {
        None => Some(arg.trim().to_string()),
        Some(o) if o == "start" => Some(arg.trim_start().to_string()),
        Some(o) if o == "end" => Some(arg.trim_end().to_string()),
        Some(_) => None,
    }
}

fn indent(arg: Option<&str>, opts: &[String]) -> Option<String> {
    let arg = arg?;
    if arg.is_empty() {
        return Some(String::new());
    }
    let spaces = |s: &str| s.parse::<u8>().ok().map(|n| " ".repeat(usize::from(n)));
    let (initial, subsequent) = match opts {
        [] => ("    ".to_string(), "    ".to_string()),
        [o] => {
            let sized = (|| {
                let digits = |s: &str| {
                    !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())
                };
                match o.split_once('/') {
                    Some((a, b)) if digits(b) && (a.is_empty() || digits(a)) => {
                        let first = if a.is_empty() {
                            String::new()
                        } else {
                            spaces(a)?
                        };
                        Some((first, spaces(b)?))
                    }
                    None if digits(o) => {
                        let s = spaces(o)?;
                        Some((s.clone(), s))
                    }
                    _ => None,
                }
            })();
            sized.unwrap_or_else(|| (o.clone(), o.clone()))
        }
        [a, b] => (a.clone(), b.clone()),
        _ => return None,
    };
    Some(format!(
        "{initial}{}",
        arg.replace('\n', &format!("\n{subsequent}"))
    ))
}

fn append(arg: Option<&str>, opts: &[String], after: bool) -> Option<String> {
    if opts.is_empty() {
        return None;
    }
    let extra: String = opts.concat();
    Some(match arg {
        None => extra,
        Some(a) if after => format!("{a}{extra}"),
        Some(a) => format!("{extra}{a}"),
    })
}

// ---- versions ------------------------------------------------------------------------------

struct Version {
    major: String,
    minor: String,
    patch: String,
    revision: String,
    prerelease: String,
    prefix: String,
    counter: String,
    metadata: String,
}

/// Octopus.Versioning's `OctopusVersionParser`: a lenient version pattern.
fn version(s: &str) -> Version {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"^(?:[vV]?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?(?:\.(?P<revision>\d+))?)?(?:[.\-_])?(?P<prerelease>(?P<prefix>[^+.\-_\s]*?)(?:[.\-_](?P<counter>[^+\s]*?))?)?(?:\+(?P<meta>[^\s]*?))?$",
        )
        .ok()
    });
    let caps = re.as_ref().and_then(|r| r.captures(s.trim()));
    let get = |n: &str| {
        caps.as_ref()
            .and_then(|c| c.name(n))
            .map_or("", |m| m.as_str())
            .to_string()
    };
    let num = |n: &str| {
        get(n)
            .parse::<u64>()
            .map_or_else(|_| "0".to_string(), |v| v.to_string())
    };
    Version {
        major: num("major"),
        minor: num("minor"),
        patch: num("patch"),
        revision: num("revision"),
        prerelease: get("prerelease"),
        prefix: get("prefix"),
        counter: get("counter"),
        metadata: get("meta"),
    }
}

// ---- dates and formats --------------------------------------------------------------------

fn now_date(arg: Option<&str>, opts: &[String], ctx: &EvalContext, utc: bool) -> Option<String> {
    if arg.is_some() || opts.len() > 1 {
        return None;
    }
    let date = if utc {
        NetDate {
            local: ctx.now_utc.naive_utc(),
            kind: DateKind::Utc,
        }
    } else {
        NetDate {
            local: ctx.now_utc.with_timezone(&ctx.local_offset).naive_local(),
            kind: DateKind::Unspecified,
        }
    };
    netfmt::format_date(
        &date,
        opts.first().map_or("O", String::as_str),
        ctx.local_offset,
    )
}

fn format(arg: Option<&str>, opts: &[String], ctx: &EvalContext) -> Option<String> {
    let arg = arg?;
    match opts {
        [fmt] => {
            if let Some(d) = netfmt::parse_decimal(arg) {
                return netfmt::format_number(&d, fmt, netfmt::NumKind::Decimal);
            }
            let d = netfmt::parse_date(arg, ctx.local_offset)?.as_offset(ctx.local_offset);
            netfmt::format_date(&d, fmt, ctx.local_offset)
        }
        [kind, fmt] => match kind.to_lowercase().as_str() {
            "int32" | "int" => {
                let v = parse_int(arg)?;
                netfmt::format_number(&netfmt::Dec::from_i64(v), fmt, netfmt::NumKind::Integer)
            }
            "double" => {
                let v = parse_double(arg)?;
                netfmt::format_double(v, fmt)
            }
            "decimal" => {
                netfmt::format_number(&netfmt::parse_decimal(arg)?, fmt, netfmt::NumKind::Decimal)
            }
            "date" | "datetime" => {
                let d = netfmt::parse_date(arg, ctx.local_offset)?.as_datetime(ctx.local_offset);
                netfmt::format_date(&d, fmt, ctx.local_offset)
            }
            "datetimeoffset" => {
                let d = netfmt::parse_date(arg, ctx.local_offset)?.as_offset(ctx.local_offset);
                netfmt::format_date(&d, fmt, ctx.local_offset)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Shifts a date by a number of milliseconds (`AddDays` and friends): naive
/// dates stay naive, UTC keeps its `Z`, an explicit offset is kept; the result
/// is in the round-trip (`O`) format (DateFunction.cs).
fn add_duration(
    arg: Option<&str>,
    opts: &[String],
    ctx: &EvalContext,
    unit_ms: i64,
) -> Option<String> {
    let [amount] = opts else { return None };
    let amount: f64 = amount.trim().parse().ok()?;
    let ticks = amount * (unit_ms as f64) * 10_000.0;
    if !ticks.is_finite() || ticks.abs() > 3.0e18 {
        return None;
    }
    let nanos = (ticks.round() as i64).checked_mul(100)?;
    shift(arg?, ctx, |d| {
        d.checked_add_signed(Duration::nanoseconds(nanos))
    })
}

fn add_months(
    arg: Option<&str>,
    opts: &[String],
    ctx: &EvalContext,
    factor: i64,
) -> Option<String> {
    let [amount] = opts else { return None };
    let months = parse_int(amount)?.checked_mul(factor)?;
    shift(arg?, ctx, |d| {
        let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
        if months >= 0 {
            d.checked_add_months(m)
        } else {
            d.checked_sub_months(m)
        }
    })
}

fn add_timespan(arg: Option<&str>, opts: &[String], ctx: &EvalContext) -> Option<String> {
    let [span] = opts else { return None };
    let d = netfmt::parse_timespan(span)?;
    shift(arg?, ctx, |x| x.checked_add_signed(d))
}

fn shift(
    arg: &str,
    ctx: &EvalContext,
    f: impl Fn(chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime>,
) -> Option<String> {
    let d = netfmt::parse_date(arg, ctx.local_offset)?;
    let shifted = NetDate {
        local: f(d.local)?,
        kind: d.kind,
    };
    if shifted.local.year() < 1 || shifted.local.year() > 9999 {
        return None;
    }
    netfmt::format_date(&shifted, "O", ctx.local_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_filter_is_handled_and_no_other() {
        let ctx = EvalContext {
            now_utc: chrono::DateTime::from_timestamp(0, 0).expect("the epoch"),
            local_offset: chrono::FixedOffset::east_opt(0).expect("UTC"),
        };
        for name in FILTERS {
            assert!(
                matches!(invoke(name, Some("1"), &[], &ctx), Invoke::Done(_)),
                "{name} is listed in FILTERS but not handled"
            );
            let upper = name.to_ascii_uppercase();
            assert!(matches!(
                invoke(&upper, Some("1"), &[], &ctx),
                Invoke::Done(_)
            ));
        }
        assert!(matches!(
            invoke("nosuchfilter", Some("1"), &[], &ctx),
            Invoke::Unknown
        ));
    }
}
