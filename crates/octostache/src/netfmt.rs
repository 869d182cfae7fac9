//! The parts of .NET that Octostache's filters lean on, for the en-US culture
//! (the culture of Octopus's documentation examples, e.g. `Format C` giving
//! `$4.30`): number and date parsing, standard and custom `ToString` formats,
//! `TimeSpan` parsing and `System.Uri`'s parts.

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

// ---- numbers ------------------------------------------------------------------------------

/// A decimal number as digits: sign, integer digits (no leading zeros; empty
/// for zero) and fraction digits (scale kept, as .NET's `decimal` keeps it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dec {
    neg: bool,
    int: String,
    frac: String,
}

/// Which .NET type a number was parsed as (some formats only suit some types).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NumKind {
    Integer,
    Decimal,
    Double,
}

impl Dec {
    pub(crate) fn from_i64(v: i64) -> Dec {
        Dec {
            neg: v < 0,
            int: v
                .unsigned_abs()
                .to_string()
                .trim_start_matches('0')
                .to_string(),
            frac: String::new(),
        }
    }

    fn is_zero(&self) -> bool {
        self.int.bytes().all(|b| b == b'0') && self.frac.bytes().all(|b| b == b'0')
    }

    /// Multiplies by 10^n (n may be negative).
    fn shift(&self, n: i32) -> Dec {
        let mut digits = format!("{}{}", self.int, self.frac);
        let mut point = i64::try_from(self.int.len()).unwrap_or(0) + i64::from(n);
        if point < 0 {
            digits = format!(
                "{}{digits}",
                "0".repeat(usize::try_from(-point).unwrap_or(0))
            );
            point = 0;
        }
        let point = usize::try_from(point).unwrap_or(0);
        if point > digits.len() {
            digits.push_str(&"0".repeat(point - digits.len()));
        }
        Dec {
            neg: self.neg,
            int: digits[..point].trim_start_matches('0').to_string(),
            frac: digits[point..].to_string(),
        }
    }

    /// Rounds to `n` fraction digits, half away from zero.
    fn round(&self, n: usize) -> Dec {
        if self.frac.len() <= n {
            let mut frac = self.frac.clone();
            frac.push_str(&"0".repeat(n - frac.len()));
            return Dec {
                neg: self.neg,
                int: self.int.clone(),
                frac,
            };
        }
        let round_up = self.frac.as_bytes()[n] >= b'5';
        let mut digits: Vec<u8> = format!("{}{}", self.int, &self.frac[..n]).into_bytes();
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, b'1');
                    break;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
        let s = String::from_utf8(digits).unwrap_or_default();
        let split = s.len() - n;
        Dec {
            neg: self.neg,
            int: s[..split].trim_start_matches('0').to_string(),
            frac: s[split..].to_string(),
        }
    }

    fn int_or_zero(&self) -> String {
        if self.int.is_empty() {
            "0".to_string()
        } else {
            self.int.clone()
        }
    }
}

/// `decimal.TryParse` with en-US `NumberStyles.Number`.
pub(crate) fn parse_decimal(s: &str) -> Option<Dec> {
    let mut t = s.trim();
    let mut neg = false;
    if let Some(r) = t.strip_prefix('-') {
        neg = true;
        t = r;
    } else if let Some(r) = t.strip_prefix('+') {
        t = r;
    } else if let Some(r) = t.strip_suffix('-') {
        neg = true;
        t = r;
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if int.starts_with(',')
        || !int.bytes().all(|b| b.is_ascii_digit() || b == b',')
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: String = int.chars().filter(|c| *c != ',').collect();
    if int.len() + frac.len() > 29 {
        return None;
    }
    Some(Dec {
        neg,
        int: int.trim_start_matches('0').to_string(),
        frac: frac.to_string(),
    })
}

fn group(int: &str) -> String {
    let mut out = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn with_frac(int: String, frac: &str) -> String {
    if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    }
}

/// A double as .NET Core writes it by default (shortest round-trip digits).
pub(crate) fn format_double_general(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞" } else { "-∞" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let exp = v.abs().log10().floor();
    if !(-5.0..15.0).contains(&exp) {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{m}E{sign}{:02}", e.abs());
    }
    format!("{v}")
}

fn dec_from_double(v: f64) -> Option<Dec> {
    if !v.is_finite() {
        return None;
    }
    parse_decimal(&format!("{v}"))
}

/// `double.ToString(format)`.
pub(crate) fn format_double(v: f64, fmt: &str) -> Option<String> {
    let f = fmt.trim();
    if f.is_empty() || f.eq_ignore_ascii_case("R") || f.eq_ignore_ascii_case("G") {
        return Some(format_double_general(v));
    }
    if !v.is_finite() {
        return Some(format_double_general(v));
    }
    format_number(&dec_from_double(v)?, fmt, NumKind::Double)
}

/// `ToString(format)` for numbers: standard formats (`C`, `D`, `E`, `F`, `G`,
/// `N`, `P`, `X`, with an optional precision) and custom ones (`0.00`, `#,##0`,
/// `0%`, sections separated by `;`).
pub(crate) fn format_number(d: &Dec, fmt: &str, kind: NumKind) -> Option<String> {
    if fmt.is_empty() {
        return format_number(d, "G", kind);
    }
    let mut chars = fmt.chars();
    let letter = chars.next()?;
    let rest = chars.as_str();
    if letter.is_ascii_alphabetic() && rest.len() <= 9 && rest.bytes().all(|b| b.is_ascii_digit()) {
        let precision: Option<usize> = if rest.is_empty() {
            None
        } else {
            rest.parse().ok()
        };
        // .NET allows precisions up to 999,999,999; beyond a few hundred digits
        // that only serves to exhaust memory.
        if precision.is_some_and(|p| p > 500) {
            return None;
        }
        return standard_number(d, letter, precision, kind);
    }
    Some(custom_number(d, fmt))
}

fn sign(d: &Dec) -> &'static str {
    if d.neg && !d.is_zero() { "-" } else { "" }
}

fn standard_number(
    d: &Dec,
    letter: char,
    precision: Option<usize>,
    kind: NumKind,
) -> Option<String> {
    match letter.to_ascii_uppercase() {
        'C' => {
            let r = d.round(precision.unwrap_or(2));
            Some(format!(
                "{}${}",
                sign(&r),
                with_frac(group(&r.int_or_zero()), &r.frac)
            ))
        }
        'D' => {
            if kind != NumKind::Integer {
                return None;
            }
            let digits = d.int_or_zero();
            let width = precision.unwrap_or(0);
            let padded = if digits.len() < width {
                format!("{}{digits}", "0".repeat(width - digits.len()))
            } else {
                digits
            };
            Some(format!("{}{padded}", sign(d)))
        }
        'X' => {
            if kind != NumKind::Integer {
                return None;
            }
            let v: i64 = format!("{}{}", if d.neg { "-" } else { "" }, d.int_or_zero())
                .parse()
                .ok()?;
            let v = i32::try_from(v).ok()?;
            let mut s = if letter == 'x' {
                format!("{v:x}")
            } else {
                format!("{v:X}")
            };
            let width = precision.unwrap_or(0);
            if s.len() < width {
                s = format!("{}{s}", "0".repeat(width - s.len()));
            }
            Some(s)
        }
        'E' => {
            let p = precision.unwrap_or(6);
            let digits = format!("{}{}", d.int, d.frac);
            let first = digits.find(|c: char| c != '0');
            let (mantissa, exp) = match first {
                None => (
                    Dec {
                        neg: d.neg,
                        int: String::new(),
                        frac: String::new(),
                    }
                    .round(p),
                    0i64,
                ),
                Some(i) => {
                    let exp =
                        i64::try_from(d.int.len()).unwrap_or(0) - i64::try_from(i).unwrap_or(0) - 1;
                    let m = d.shift(i32::try_from(-exp).ok()?).round(p);
                    if m.int.len() > 1 {
                        (d.shift(i32::try_from(-exp - 1).ok()?).round(p), exp + 1)
                    } else {
                        (m, exp)
                    }
                }
            };
            let e = if letter == 'e' { 'e' } else { 'E' };
            let es = if exp < 0 { '-' } else { '+' };
            Some(format!(
                "{}{}{e}{es}{:03}",
                sign(d),
                with_frac(mantissa.int_or_zero(), &mantissa.frac),
                exp.abs()
            ))
        }
        'F' => {
            let r = d.round(precision.unwrap_or(2));
            Some(format!(
                "{}{}",
                sign(&r),
                with_frac(r.int_or_zero(), &r.frac)
            ))
        }
        'N' => {
            let r = d.round(precision.unwrap_or(2));
            Some(format!(
                "{}{}",
                sign(&r),
                with_frac(group(&r.int_or_zero()), &r.frac)
            ))
        }
        'P' => {
            let r = d.shift(2).round(precision.unwrap_or(2));
            Some(format!(
                "{}{}%",
                sign(&r),
                with_frac(group(&r.int_or_zero()), &r.frac)
            ))
        }
        'G' => match precision {
            None | Some(0) => match kind {
                NumKind::Double => {
                    let v: f64 = format!("{}{}.{}", sign(d), d.int_or_zero(), d.frac)
                        .parse()
                        .ok()?;
                    Some(format_double_general(v))
                }
                _ => Some(format!(
                    "{}{}",
                    sign(d),
                    with_frac(d.int_or_zero(), &d.frac)
                )),
            },
            Some(p) => {
                let digits = format!("{}{}", d.int, d.frac);
                let Some(first) = digits.find(|c: char| c != '0') else {
                    return Some("0".to_string());
                };
                let exp =
                    i64::try_from(d.int.len()).unwrap_or(0) - i64::try_from(first).unwrap_or(0) - 1;
                let decimals = usize::try_from((i64::try_from(p).ok()? - 1 - exp).max(0)).ok()?;
                let r = d.round(decimals);
                let frac = r.frac.trim_end_matches('0');
                Some(format!("{}{}", sign(&r), with_frac(r.int_or_zero(), frac)))
            }
        },
        _ => None,
    }
}

#[derive(Debug)]
enum NTok {
    Lit(String),
    Zero,
    Hash,
    Point,
    Comma,
    Percent,
    Permille,
}

fn custom_number(d: &Dec, fmt: &str) -> String {
    // Sections: positive;negative;zero.
    let sections = split_sections(fmt);
    let (section, use_sign) = match sections.len() {
        1 => (sections[0].as_str(), true),
        _ => {
            if d.is_zero() && sections.len() > 2 && !sections[2].is_empty() {
                (sections[2].as_str(), false)
            } else if d.neg && !sections[1].is_empty() {
                (sections[1].as_str(), false)
            } else {
                (sections[0].as_str(), true)
            }
        }
    };
    let toks = number_tokens(section);
    let point = toks.iter().position(|t| matches!(t, NTok::Point));
    let int_end = point.unwrap_or(toks.len());
    let is_digit = |t: &NTok| matches!(t, NTok::Zero | NTok::Hash);
    let int_places: Vec<usize> = (0..int_end).filter(|&i| is_digit(&toks[i])).collect();
    let frac_places: Vec<usize> = (int_end..toks.len())
        .filter(|&i| is_digit(&toks[i]))
        .collect();
    // Commas right after the last integer placeholder scale by 1000; commas
    // between placeholders turn on grouping.
    let last_int = int_places.last().copied();
    let first_int = int_places.first().copied();
    let mut scale = 0i32;
    let mut grouping = false;
    for (i, t) in toks.iter().enumerate().take(int_end) {
        if matches!(t, NTok::Comma) {
            match (first_int, last_int) {
                (Some(f), Some(l)) if i > f && i < l => grouping = true,
                (Some(_), Some(l)) if i > l => scale -= 3,
                _ => {}
            }
        }
    }
    for t in &toks {
        match t {
            NTok::Percent => scale += 2,
            NTok::Permille => scale += 3,
            _ => {}
        }
    }
    let max_frac = frac_places.len();
    let min_frac = frac_places
        .iter()
        .rposition(|&i| matches!(toks[i], NTok::Zero))
        .map_or(0, |p| p + 1);
    let min_int = int_places
        .iter()
        .position(|&i| matches!(toks[i], NTok::Zero))
        .map_or(0, |p| int_places.len() - p);
    let r = d.shift(scale).round(max_frac);
    let mut frac = r.frac.clone();
    while frac.len() > min_frac && frac.ends_with('0') {
        frac.pop();
    }
    let mut int = r.int.clone();
    if int.len() < min_int {
        int = format!("{}{int}", "0".repeat(min_int - int.len()));
    }
    if grouping {
        int = group(&int);
    }
    let negative = use_sign && r.neg && !r.is_zero();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let int_chars: Vec<char> = int.chars().collect();
    let places = int_places.len();
    let mut next_digit = 0usize;
    let mut frac_iter = frac.chars();
    for (i, t) in toks.iter().enumerate() {
        match t {
            NTok::Lit(s) => out.push_str(s),
            NTok::Percent => out.push('%'),
            NTok::Permille => out.push('‰'),
            NTok::Comma => {}
            NTok::Point => {
                if !frac.is_empty() {
                    out.push('.');
                }
            }
            NTok::Zero | NTok::Hash if i < int_end => {
                let k = int_places.iter().position(|&p| p == i).unwrap_or(0);
                if grouping {
                    if k == 0 {
                        out.push_str(&int);
                    }
                    continue;
                }
                let extra = int_chars.len().saturating_sub(places);
                let take = if k == 0 { extra + 1 } else { 1 };
                let missing = places.saturating_sub(int_chars.len());
                if k < missing {
                    continue;
                }
                for _ in 0..take {
                    if let Some(c) = int_chars.get(next_digit) {
                        out.push(*c);
                        next_digit += 1;
                    }
                }
            }
            NTok::Zero | NTok::Hash => {
                if let Some(c) = frac_iter.next() {
                    out.push(c);
                }
            }
        }
    }
    if places == 0 && !int.is_empty() && point.is_none() && frac_places.is_empty() {
        // A format without placeholders shows no digits.
    }
    out
}

fn split_sections(fmt: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = fmt.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        let cur = out.last_mut();
        let Some(cur) = cur else { break };
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (None, '\\') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, ';') => out.push(String::new()),
            (None, c) => cur.push(c),
        }
    }
    out
}

fn number_tokens(section: &str) -> Vec<NTok> {
    let mut toks = Vec::new();
    let mut chars = section.chars();
    let mut seen_point = false;
    while let Some(c) = chars.next() {
        match c {
            '0' => toks.push(NTok::Zero),
            '#' => toks.push(NTok::Hash),
            '.' if !seen_point => {
                seen_point = true;
                toks.push(NTok::Point);
            }
            '.' => {}
            ',' => toks.push(NTok::Comma),
            '%' => toks.push(NTok::Percent),
            '‰' => toks.push(NTok::Permille),
            '\\' => {
                if let Some(n) = chars.next() {
                    toks.push(NTok::Lit(n.to_string()));
                }
            }
            '\'' | '"' => {
                let mut lit = String::new();
                for n in chars.by_ref() {
                    if n == c {
                        break;
                    }
                    lit.push(n);
                }
                toks.push(NTok::Lit(lit));
            }
            c => toks.push(NTok::Lit(c.to_string())),
        }
    }
    toks
}

// ---- dates --------------------------------------------------------------------------------

/// A parsed date and what it knows about its offset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NetDate {
    /// The wall-clock time.
    pub(crate) local: NaiveDateTime,
    pub(crate) kind: DateKind,
}

/// `DateTimeKind`, or a `DateTimeOffset`'s offset.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DateKind {
    /// No offset known (a naive `DateTime`).
    Unspecified,
    /// A UTC `DateTime` (written with a `Z`).
    Utc,
    /// A local `DateTime` or a `DateTimeOffset` with this offset.
    Offset(FixedOffset),
}

impl NetDate {
    /// As a `DateTimeOffset`: a naive date is taken to be local time.
    pub(crate) fn as_offset(self, local: FixedOffset) -> NetDate {
        let kind = match self.kind {
            DateKind::Unspecified => DateKind::Offset(local),
            DateKind::Utc => DateKind::Offset(FixedOffset::east_opt(0).unwrap_or(local)),
            k @ DateKind::Offset(_) => k,
        };
        NetDate {
            local: self.local,
            kind,
        }
    }

    /// As `DateTime.Parse` gives it: a date with an offset is converted to local
    /// time.
    pub(crate) fn as_datetime(self, local: FixedOffset) -> NetDate {
        match self.kind {
            DateKind::Unspecified => self,
            DateKind::Utc => NetDate {
                local: shift_secs(self.local, i64::from(local.local_minus_utc())),
                kind: DateKind::Offset(local),
            },
            DateKind::Offset(o) => NetDate {
                local: shift_secs(
                    self.local,
                    i64::from(local.local_minus_utc()) - i64::from(o.local_minus_utc()),
                ),
                kind: DateKind::Offset(local),
            },
        }
    }
}

/// Moves a wall-clock time by whole seconds, staying put at the ends of time.
fn shift_secs(t: NaiveDateTime, secs: i64) -> NaiveDateTime {
    t.checked_add_signed(Duration::seconds(secs)).unwrap_or(t)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn month_from_name(s: &str) -> Option<u32> {
    let l = s.to_lowercase();
    if l.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.to_lowercase() == l || m.to_lowercase()[..3] == l)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// `DateTime.TryParse` / `DateTimeOffset.TryParse` for en-US: ISO 8601
/// (`2030-05-22T09:05:00.1234567+10:00`), `2030/05/22 09:05:00`,
/// `5/22/2030 9:05 AM`, `22 May 2030`, `Wed, 22 May 2030 09:05:00 GMT`.
pub(crate) fn parse_date(s: &str, _local: FixedOffset) -> Option<NetDate> {
    let mut t = s.trim().to_string();
    if t.is_empty() {
        return None;
    }
    // Offset suffix.
    let mut kind = DateKind::Unspecified;
    if let Some(r) = t.strip_suffix(" GMT").or_else(|| t.strip_suffix(" UTC")) {
        t = r.to_string();
        kind = DateKind::Utc;
    } else if t.ends_with('Z') || t.ends_with('z') {
        t.pop();
        kind = DateKind::Utc;
    } else if let Some((body, off)) = split_offset(&t) {
        kind = DateKind::Offset(off);
        t = body;
    }
    let t = t.trim();
    // Day names are ignored ("Wed, 22 May 2030").
    let t = match t.split_once(',') {
        Some((day, rest))
            if DAYS.iter().any(|d| {
                d.to_lowercase().starts_with(&day.trim().to_lowercase()) && day.trim().len() >= 3
            }) =>
        {
            rest.trim()
        }
        _ => t,
    };
    let (date_part, time_part) = split_date_time(t);
    let date = parse_date_part(date_part)?;
    let time = match time_part {
        Some(tp) => parse_time_part(tp)?,
        None => NaiveTime::MIN,
    };
    Some(NetDate {
        local: NaiveDateTime::new(date, time),
        kind,
    })
}

fn split_offset(t: &str) -> Option<(String, FixedOffset)> {
    // +hh:mm, +hhmm or +hh after a time.
    let idx = t.rfind(['+', '-'])?;
    let (body, off) = t.split_at(idx);
    if !body.contains(':') {
        return None;
    }
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    if h > 14 || m > 59 {
        return None;
    }
    Some((
        body.trim().to_string(),
        FixedOffset::east_opt(sign * (h * 3600 + m * 60))?,
    ))
}

fn split_date_time(t: &str) -> (&str, Option<&str>) {
    if let Some(i) = t.find('T')
        && t[..i].bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && i >= 8
    {
        return (&t[..i], Some(&t[i + 1..]));
    }
    // The time starts at the first token containing ':'.
    let mut pos = 0;
    for part in t.split(' ') {
        if part.contains(':') {
            return (t[..pos].trim(), Some(t[pos..].trim()));
        }
        pos += part.len() + 1;
    }
    (t, None)
}

fn parse_date_part(d: &str) -> Option<NaiveDate> {
    let d = d.trim();
    let nums: Vec<&str> = d.split(['-', '/', '.']).collect();
    let num = |s: &str| -> Option<i32> {
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if nums.len() == 3
        && let (Some(a), Some(b), Some(c)) = (num(nums[0]), num(nums[1]), num(nums[2]))
    {
        let to_u = |v: i32| u32::try_from(v).ok();
        return if nums[0].len() == 4 {
            NaiveDate::from_ymd_opt(a, to_u(b)?, to_u(c)?)
        } else {
            // en-US: month/day/year.
            let year = if nums[2].len() <= 2 { 2000 + c } else { c };
            NaiveDate::from_ymd_opt(year, to_u(a)?, to_u(b)?)
        };
    }
    // "22 May 2030", "May 22 2030", "May 22, 2030".
    let words: Vec<&str> = d.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    if words.len() == 3 {
        let (day, month, year) = if let Some(m) = month_from_name(words[1]) {
            (words[0], m, words[2])
        } else {
            (words[1], month_from_name(words[0])?, words[2])
        };
        return NaiveDate::from_ymd_opt(num(year)?, month, u32::try_from(num(day)?).ok()?);
    }
    None
}

fn parse_time_part(t: &str) -> Option<NaiveTime> {
    let t = t.trim();
    let (clock, ampm) = match t.rsplit_once(' ') {
        Some((c, m)) if m.eq_ignore_ascii_case("AM") || m.eq_ignore_ascii_case("PM") => {
            (c.trim(), Some(m.to_ascii_uppercase()))
        }
        _ => (t, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let mut h: u32 = parts[0].parse().ok()?;
    let m: u32 = parts[1].parse().ok()?;
    let (s, nanos) = match parts.get(2) {
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let s: u32 = whole.parse().ok()?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
                return None;
            }
            let padded = format!("{frac:0<9}");
            (s, padded.parse::<u32>().unwrap_or(0))
        }
        None => (0, 0),
    };
    match ampm.as_deref() {
        Some("PM") if h < 12 => h += 12,
        Some("AM") if h == 12 => h = 0,
        _ => {}
    }
    NaiveTime::from_hms_nano_opt(h, m, s, nanos)
}

/// `TimeSpan.TryParse` (invariant): `d`, `hh:mm`, `hh:mm:ss`, `d.hh:mm:ss[.f]`,
/// `d:hh:mm:ss`; an hour field over 23 in `hh:mm:ss` is read as days, as .NET does.
pub(crate) fn parse_timespan(s: &str) -> Option<Duration> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let n = |x: &str| -> Option<i64> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            x.parse().ok()
        }
    };
    let (days, rest) = match t.split_once('.') {
        Some((d, r)) if !d.contains(':') => (n(d)?, r),
        _ => (0, t),
    };
    let (rest, frac) = match rest.rsplit_once('.') {
        Some((r, f)) if r.contains(':') => (r, f),
        _ => (rest, ""),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (d, h, m, sec) = match parts.as_slice() {
        [d] => (n(d)?, 0, 0, 0),
        [h, m] => (days, n(h)?, n(m)?, 0),
        [h, m, s] => {
            let (h, m, s) = (n(h)?, n(m)?, n(s)?);
            if h > 23 && days == 0 {
                (h, m, s, 0)
            } else {
                (days, h, m, s)
            }
        }
        [d, h, m, s] => (n(d)?, n(h)?, n(m)?, n(s)?),
        _ => return None,
    };
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        if frac.len() > 7 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{frac:0<9}").parse::<i64>().ok()?
    };
    let total = Duration::try_days(d)?
        .checked_add(&Duration::try_hours(h)?)?
        .checked_add(&Duration::try_minutes(m)?)?
        .checked_add(&Duration::try_seconds(sec)?)?
        .checked_add(&Duration::nanoseconds(nanos))?;
    Some(if neg { -total } else { total })
}

fn offset_text(o: FixedOffset, width: usize) -> String {
    let secs = o.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let (h, m) = (secs.abs() / 3600, (secs.abs() % 3600) / 60);
    match width {
        1 => format!("{sign}{h}"),
        2 => format!("{sign}{h:02}"),
        _ => format!("{sign}{h:02}:{m:02}"),
    }
}

/// `DateTime.ToString(format)` / `DateTimeOffset.ToString(format)` for en-US.
pub(crate) fn format_date(d: &NetDate, fmt: &str, local: FixedOffset) -> Option<String> {
    let expanded: String = if fmt.chars().count() == 1 {
        match fmt {
            "d" => "M/d/yyyy".into(),
            "D" => "dddd, MMMM d, yyyy".into(),
            "f" => "dddd, MMMM d, yyyy h:mm tt".into(),
            "F" => "dddd, MMMM d, yyyy h:mm:ss tt".into(),
            "g" => "M/d/yyyy h:mm tt".into(),
            "G" => "M/d/yyyy h:mm:ss tt".into(),
            "m" | "M" => "MMMM d".into(),
            "o" | "O" => match d.kind {
                DateKind::Unspecified => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffff".into(),
                _ => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK".into(),
            },
            "r" | "R" => {
                let utc = to_utc(d, local);
                return format_date(&utc, "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'", local);
            }
            "s" => "yyyy'-'MM'-'dd'T'HH':'mm':'ss".into(),
            "t" => "h:mm tt".into(),
            "T" => "h:mm:ss tt".into(),
            "u" => {
                let utc = match d.kind {
                    DateKind::Offset(_) => to_utc(d, local),
                    _ => *d,
                };
                return format_date(&utc, "yyyy'-'MM'-'dd HH':'mm':'ss'Z'", local);
            }
            "U" => {
                let utc = to_utc(d, local);
                return format_date(&utc, "dddd, MMMM d, yyyy h:mm:ss tt", local);
            }
            "y" | "Y" => "MMMM yyyy".into(),
            _ => return None,
        }
    } else {
        fmt.to_string()
    };
    Some(custom_date(d, &expanded, local))
}

fn to_utc(d: &NetDate, local: FixedOffset) -> NetDate {
    let off = match d.kind {
        DateKind::Utc => 0,
        DateKind::Offset(o) => o.local_minus_utc(),
        DateKind::Unspecified => local.local_minus_utc(),
    };
    NetDate {
        local: shift_secs(d.local, -i64::from(off)),
        kind: DateKind::Utc,
    }
}

fn custom_date(d: &NetDate, fmt: &str, local: FixedOffset) -> String {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let dt = d.local;
    let offset = match d.kind {
        DateKind::Offset(o) => o,
        _ => local,
    };
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match c {
            'y' => {
                let y = dt.year();
                out.push_str(&match n {
                    1 => (y % 100).to_string(),
                    2 => format!("{:02}", y % 100),
                    _ => format!("{y:0n$}"),
                });
            }
            'M' => {
                let m = dt.month();
                let name = MONTHS[(m as usize).saturating_sub(1) % 12];
                out.push_str(&match n {
                    1 => m.to_string(),
                    2 => format!("{m:02}"),
                    3 => name[..3].to_string(),
                    _ => name.to_string(),
                });
            }
            'd' => {
                let day = dt.day();
                let name = DAYS[dt.weekday().num_days_from_sunday() as usize % 7];
                out.push_str(&match n {
                    1 => day.to_string(),
                    2 => format!("{day:02}"),
                    3 => name[..3].to_string(),
                    _ => name.to_string(),
                });
            }
            'h' => {
                let h = match dt.hour() % 12 {
                    0 => 12,
                    h => h,
                };
                out.push_str(&if n == 1 {
                    h.to_string()
                } else {
                    format!("{h:02}")
                });
                n = n.min(2);
            }
            'H' => {
                let h = dt.hour();
                out.push_str(&if n == 1 {
                    h.to_string()
                } else {
                    format!("{h:02}")
                });
                n = n.min(2);
            }
            'm' => {
                let m = dt.minute();
                out.push_str(&if n == 1 {
                    m.to_string()
                } else {
                    format!("{m:02}")
                });
                n = n.min(2);
            }
            's' => {
                let s = dt.second();
                out.push_str(&if n == 1 {
                    s.to_string()
                } else {
                    format!("{s:02}")
                });
                n = n.min(2);
            }
            'f' | 'F' => {
                let n7 = n.min(7);
                let digits = format!("{:09}", dt.nanosecond() % 1_000_000_000);
                let mut part = digits[..n7].to_string();
                if c == 'F' {
                    while part.ends_with('0') {
                        part.pop();
                    }
                    if part.is_empty() && out.ends_with('.') {
                        out.pop();
                    }
                }
                out.push_str(&part);
                n = n7;
            }
            't' => {
                let ampm = if dt.hour() < 12 { "AM" } else { "PM" };
                out.push_str(if n == 1 { &ampm[..1] } else { ampm });
                n = n.min(2);
            }
            'z' => {
                out.push_str(&offset_text(offset, n.min(3)));
                n = n.min(3);
            }
            'K' => {
                match d.kind {
                    DateKind::Unspecified => {}
                    DateKind::Utc => out.push('Z'),
                    DateKind::Offset(o) => out.push_str(&offset_text(o, 3)),
                }
                n = 1;
            }
            'g' => out.push_str("A.D."),
            '\'' | '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != c {
                    out.push(chars[j]);
                    j += 1;
                }
                i = j + 1;
                continue;
            }
            '\\' => {
                if let Some(next) = chars.get(i + 1) {
                    out.push(*next);
                }
                i += 2;
                continue;
            }
            '%' => {
                n = 1;
            }
            other => {
                out.push(other);
                n = 1;
            }
        }
        i += n;
    }
    out
}

// ---- URIs ----------------------------------------------------------------------------------

struct Uri {
    scheme: String,
    user_info: String,
    host: String,
    port: Option<u16>,
    path: String,
    query: String,
    fragment: String,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        "ssh" | "sftp" => Some(22),
        "telnet" => Some(23),
        "ldap" => Some(389),
        "gopher" => Some(70),
        "nntp" => Some(119),
        "news" => None,
        _ => None,
    }
}

fn parse_uri(s: &str) -> Option<Uri> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (rest, fragment) = match rest.find('#') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, String::new()),
    };
    let (rest, query) = match rest.find('?') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, String::new()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (user_info, hostport) = match authority.rfind('@') {
        Some(i) => (authority[..i].to_string(), &authority[i + 1..]),
        None => (String::new(), authority),
    };
    let (host, port) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        let port = hostport[end + 1..]
            .strip_prefix(':')
            .map(str::parse::<u16>)
            .transpose()
            .ok()?;
        (hostport[..=end].to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().ok()?)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() && scheme != "file" {
        return None;
    }
    Some(Uri {
        scheme,
        user_info,
        host: host.to_lowercase(),
        port,
        path,
        query,
        fragment,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `UriPart` filter (TextManipulationFunction.cs), with its in-band error
/// messages.
pub(crate) fn uri_part(arg: &str, opts: &[String]) -> String {
    let Some(part) = opts.first() else {
        return "[UriPart error: no argument given]".to_string();
    };
    let lower = part.to_ascii_lowercase();
    let known = [
        "absolutepath",
        "absoluteuri",
        "authority",
        "dnssafehost",
        "fragment",
        "host",
        "hostandport",
        "hostnametype",
        "isabsoluteuri",
        "isdefaultport",
        "isfile",
        "isloopback",
        "isunc",
        "path",
        "pathandquery",
        "port",
        "query",
        "scheme",
        "schemeandserver",
        "userinfo",
    ];
    if !known.contains(&lower.as_str()) {
        return format!("[UriPart {part} error: argument '{part}' not supported]");
    }
    let Some(u) = parse_uri(arg) else {
        if lower == "isabsoluteuri" {
            return "false".to_string();
        }
        return format!(
            "[UriPart {part} error: This operation is not supported for a relative URI.]"
        );
    };
    let port = u.port.or_else(|| default_port(&u.scheme));
    let is_default = u.port.is_none() || u.port == default_port(&u.scheme);
    let port_text = port.map_or("-1".to_string(), |p| p.to_string());
    let authority = if is_default {
        u.host.clone()
    } else {
        format!("{}:{port_text}", u.host)
    };
    let host_type = if u.host.starts_with('[') {
        "IPv6"
    } else if u.host.split('.').count() == 4 && u.host.split('.').all(|p| p.parse::<u8>().is_ok()) {
        "IPv4"
    } else if u.host.is_empty() {
        "Basic"
    } else {
        "Dns"
    };
    let user = if u.user_info.is_empty() {
        String::new()
    } else {
        format!("{}@", u.user_info)
    };
    match lower.as_str() {
        "absolutepath" => u.path,
        "absoluteuri" => format!(
            "{}://{user}{authority}{}{}{}",
            u.scheme, u.path, u.query, u.fragment
        ),
        "authority" => authority,
        "dnssafehost" => u
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        "fragment" => u.fragment,
        "host" => u.host,
        "hostandport" => match port {
            Some(p) => format!("{}:{p}", u.host),
            None => u.host,
        },
        "hostnametype" => host_type.to_string(),
        "isabsoluteuri" => "true".to_string(),
        "isdefaultport" => bool_text(is_default),
        "isfile" => bool_text(u.scheme == "file"),
        "isloopback" => {
            bool_text(u.host == "localhost" || u.host.starts_with("127.") || u.host == "[::1]")
        }
        "isunc" => bool_text(u.scheme == "file" && !u.host.is_empty()),
        "path" => percent_decode(&u.path),
        "pathandquery" => format!("{}{}", u.path, u.query),
        "port" => port_text,
        "query" => u.query,
        "scheme" => u.scheme,
        "schemeandserver" => format!("{}://{authority}", u.scheme),
        _ => u.user_info,
    }
}

fn bool_text(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}
