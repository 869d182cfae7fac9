//! The template grammar: a hand-written parser that follows Octostache's
//! Sprache grammar (`TemplateParser.cs`) rule by rule, including where a failed
//! rule reports its failure, because the continue-on-error mode copies exactly
//! the text up to that point verbatim.
//!
//! Every rule returns `Ok((value, end))` or `Err(position of failure)`. An
//! alternative (`Or`) reports the furthest failure, as Sprache does; a `Many`
//! never fails and forgets the failure that stopped it.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// How deeply `#{if}`, `#{each}` and indexers may nest before a template is
/// considered hostile and left unchanged.
pub(crate) const MAX_PARSE_DEPTH: usize = 100;

/// One step of a symbol path: `.Name` or `[Index]`.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// An identifier (already trimmed).
    Ident(String),
    /// A literal index, `[Web01]`, `[]`, `[' + x + ']`.
    Index(String),
    /// A nested substitution used as an index, `[#{StepName}]`.
    SymbolIndex(Symbol),
}

/// A dotted/bracketed variable path such as `Octopus.Action[Step].Output.X`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Symbol {
    pub(crate) steps: Vec<Step>,
}

/// What a substitution evaluates.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    /// A variable path (possibly with no steps, as in `#{ | NowDate}`).
    Symbol(Symbol),
    /// `argument | Function option option`.
    Call {
        function: String,
        argument: Box<Expr>,
        options: Vec<Arc<Tok>>,
    },
}

/// The test of an `#{if}` or `#{unless}`.
#[derive(Clone, Debug)]
pub(crate) enum Condition {
    /// `#{if X}`, `#{if X | Contains "y"}`.
    Truthy(Expr),
    /// `#{if X == "literal"}` or `#{if "literal" == X}`.
    Str { left: Expr, eq: bool, right: String },
    /// `#{if X == Y}`.
    Expr { left: Expr, eq: bool, right: Expr },
}

/// A `#{calc}` expression.
#[derive(Clone, Debug)]
pub(crate) enum Calc {
    Const(f64),
    Var(Symbol),
    Op(Box<Calc>, char, Box<Calc>),
}

/// A template token.
#[derive(Clone, Debug)]
pub(crate) enum Tok {
    /// Literal text (escapes already applied: `##{` became `#{`).
    Text(String),
    /// `#{expression}`.
    Subst(Expr),
    /// `#{if}` / `#{unless}` (unless swaps the branches), `#{elseif}` folded in.
    Cond {
        cond: Condition,
        truthy: Vec<Arc<Tok>>,
        falsy: Vec<Arc<Tok>>,
    },
    /// `#{each x in Coll}`.
    Each {
        var: String,
        coll: Symbol,
        body: Vec<Arc<Tok>>,
    },
    /// `#{calc ...}`.
    Calc(Calc),
}

/// A parsed template.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) tokens: Vec<Arc<Tok>>,
    /// True when some text did not parse and was copied verbatim (Octostache's
    /// halt-on-error grammar would have rejected the template).
    pub(crate) had_error: bool,
    /// True when the template nests deeper than [`MAX_PARSE_DEPTH`]; `tokens`
    /// then holds the whole source as one text token.
    pub(crate) too_deep: bool,
}

type PResult<T> = Result<(T, usize), usize>;

/// Parses a template with the continue-on-error grammar.
pub(crate) fn parse_template(src: &str) -> Parsed {
    let mut p = Parser {
        src,
        bytes: src.as_bytes(),
        memo: HashMap::new(),
        depth: 0,
        too_deep: false,
    };
    let mut tokens = Vec::new();
    let mut had_error = false;
    let mut pos = 0;
    while pos < src.len() {
        match p.token(pos) {
            Ok((tok, end)) => {
                push_tok(&mut tokens, tok);
                pos = end;
            }
            Err(fail) => {
                if p.too_deep {
                    break;
                }
                had_error = true;
                // The ContinueMany of TemplateParser.cs: the text up to the failure
                // is kept verbatim.
                let end = if fail > pos {
                    fail
                } else {
                    next_char(src, pos)
                };
                push_tok(&mut tokens, Arc::new(Tok::Text(src[pos..end].to_string())));
                pos = end;
            }
        }
        if p.too_deep {
            break;
        }
    }
    if p.too_deep {
        return Parsed {
            tokens: vec![Arc::new(Tok::Text(src.to_string()))],
            had_error: true,
            too_deep: true,
        };
    }
    Parsed {
        tokens,
        had_error,
        too_deep: false,
    }
}

/// Parses a variable name as a symbol path (no end required, as Octostache's
/// `TryParseIdentifierPath`).
pub(crate) fn parse_symbol_path(name: &str) -> Option<Symbol> {
    let mut p = Parser {
        src: name,
        bytes: name.as_bytes(),
        memo: HashMap::new(),
        depth: 0,
        too_deep: false,
    };
    p.symbol(0).ok().map(|(s, _)| s)
}

fn push_tok(tokens: &mut Vec<Arc<Tok>>, tok: Arc<Tok>) {
    if let Tok::Text(t) = &*tok
        && let Some(last) = tokens.last_mut()
        && let Tok::Text(prev) = &**last
    {
        let joined = format!("{prev}{t}");
        *last = Arc::new(Tok::Text(joined));
        return;
    }
    tokens.push(tok);
}

fn next_char(src: &str, pos: usize) -> usize {
    src[pos..]
        .chars()
        .next()
        .map_or(src.len(), |c| pos + c.len_utf8())
}

fn ident_char(c: char, allow_ws: bool) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (allow_ws && c.is_whitespace())
        || matches!(c, '_' | '-' | ':' | '/' | '~' | '(' | ')' | '@')
}

struct Parser<'s> {
    src: &'s str,
    bytes: &'s [u8],
    memo: HashMap<usize, Result<(Arc<Tok>, usize), usize>>,
    depth: usize,
    too_deep: bool,
}

impl<'s> Parser<'s> {
    fn peek(&self, pos: usize) -> Option<char> {
        self.src.get(pos..).and_then(|s| s.chars().next())
    }

    fn starts(&self, pos: usize, lit: &str) -> bool {
        self.bytes
            .get(pos..)
            .is_some_and(|b| b.starts_with(lit.as_bytes()))
    }

    /// Sprache's `Parse.String`: fails at the first mismatching character.
    fn lit(&self, pos: usize, lit: &str) -> PResult<()> {
        let mut p = pos;
        for lc in lit.chars() {
            match self.peek(p) {
                Some(c) if c == lc => p += c.len_utf8(),
                _ => return Err(p),
            }
        }
        Ok(((), p))
    }

    /// `Parse.IgnoreCase` for ASCII keywords.
    fn keyword(&self, pos: usize, kw: &str) -> PResult<()> {
        let mut p = pos;
        for lc in kw.chars() {
            match self.peek(p) {
                Some(c) if c.eq_ignore_ascii_case(&lc) => p += c.len_utf8(),
                _ => return Err(p),
            }
        }
        Ok(((), p))
    }

    fn ws(&self, mut pos: usize) -> usize {
        while let Some(c) = self.peek(pos) {
            if !c.is_whitespace() {
                break;
            }
            pos += c.len_utf8();
        }
        pos
    }

    /// The `FollowedBy` helper of TemplateParser.cs, including its quirk of
    /// failing when the lookahead would end exactly at the end of the input.
    fn followed_by(&self, pos: usize, la: &str) -> bool {
        pos + la.len() < self.src.len() && self.starts(pos, la)
    }

    fn enter(&mut self, pos: usize) -> Result<(), usize> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            self.too_deep = true;
            return Err(pos);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- identifiers and symbols -------------------------------------------

    fn identifier(&self, pos: usize, allow_ws: bool) -> PResult<String> {
        let mut i = pos;
        while let Some(c) = self.peek(i) {
            if !ident_char(c, allow_ws) {
                break;
            }
            let next = i + c.len_utf8();
            if c.is_whitespace() {
                if self.followed_by(next, "|") || self.followed_by(next, "}") {
                    break;
                }
                let before_keyword = ["in", "==", "!="].iter().any(|kw| {
                    let after = next + kw.len();
                    after < self.src.len()
                        && self.starts(next, kw)
                        && self.peek(after).is_some_and(char::is_whitespace)
                });
                if before_keyword {
                    break;
                }
            }
            i = next;
        }
        if i == pos {
            return Err(pos);
        }
        Ok((self.src[pos..i].trim().to_string(), i))
    }

    fn symbol(&mut self, pos: usize) -> PResult<Symbol> {
        let (first, mut p) = self.identifier(pos, true)?;
        let mut steps = vec![Step::Ident(first)];
        loop {
            if self.peek(p) == Some('.') {
                match self.identifier(p + 1, true) {
                    Ok((id, e)) => {
                        steps.push(Step::Ident(id));
                        p = e;
                        continue;
                    }
                    Err(_) => break,
                }
            }
            match self.indexer(p) {
                Ok((st, e)) => {
                    steps.push(st);
                    p = e;
                }
                Err(_) => break,
            }
        }
        Ok((Symbol { steps }, p))
    }

    fn indexer(&mut self, pos: usize) -> PResult<Step> {
        self.enter(pos)?;
        let r = self.indexer_inner(pos);
        self.leave();
        r
    }

    fn indexer_inner(&mut self, pos: usize) -> PResult<Step> {
        let open = self.lit(pos, "[")?.1;
        // '[' SymbolIndexer.Token() ']'
        let first = (|| {
            let p = self.ws(open);
            let (tok, p) = self.substitution(p)?;
            let Tok::Subst(Expr::Symbol(sym)) = tok else {
                return Err(open);
            };
            let p = self.ws(p);
            let ((), p) = self.lit(p, "]")?;
            Ok((Step::SymbolIndex(sym), p))
        })();
        let e1 = match first {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        match self.string_indexer(pos) {
            Ok((s, p)) => Ok((Step::Index(s), p)),
            Err(e2) => Err(e1.max(e2)),
        }
    }

    /// `[` (nested indexer | run of non-bracket characters)* `]`, leading
    /// whitespace skipped by `.Token()`.
    fn string_indexer(&mut self, pos: usize) -> PResult<String> {
        self.enter(pos)?;
        let r = (|| {
            let ((), mut p) = self.lit(pos, "[")?;
            p = self.ws(p);
            let mut out = String::new();
            loop {
                match self.peek(p) {
                    Some('[') => match self.string_indexer(p) {
                        Ok((inner, e)) => {
                            out.push('[');
                            out.push_str(&inner);
                            out.push(']');
                            p = e;
                        }
                        Err(_) => break,
                    },
                    Some(']') | None => break,
                    Some(_) => {
                        let start = p;
                        while let Some(c) = self.peek(p) {
                            if c == '[' || c == ']' {
                                break;
                            }
                            p += c.len_utf8();
                        }
                        out.push_str(&self.src[start..p]);
                    }
                }
            }
            p = self.ws(p);
            let ((), p) = self.lit(p, "]")?;
            Ok((out, p))
        })();
        self.leave();
        r
    }

    // ---- expressions ----------------------------------------------------------

    fn expression(&mut self, pos: usize) -> PResult<Expr> {
        let e1 = match self.filter_chain(pos) {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        match self.symbol(pos) {
            Ok((s, p)) => Ok((Expr::Symbol(s), p)),
            Err(e2) => Err(e1.max(e2)),
        }
    }

    fn filter_chain(&mut self, pos: usize) -> PResult<Expr> {
        let p0 = self.ws(pos);
        let (sym, mut p) = match self.symbol(p0) {
            Ok((s, e)) => (s, self.ws(e)),
            Err(_) => (Symbol::default(), pos),
        };
        let mut expr = Expr::Symbol(sym);
        let mut count = 0;
        loop {
            let Ok(((), after_bar)) = self.lit(p, "|") else {
                if count == 0 {
                    return Err(p);
                }
                break;
            };
            let q = self.ws(after_bar);
            let (function, q) = match self.identifier(q, false) {
                Ok(r) => r,
                Err(e) => {
                    if count == 0 {
                        return Err(e);
                    }
                    break;
                }
            };
            let mut q = self.ws(q);
            let mut options = Vec::new();
            while let Some((opt, e)) = self.option(q)? {
                options.push(opt);
                q = e;
            }
            expr = Expr::Call {
                function,
                argument: Box::new(expr),
                options,
            };
            count += 1;
            p = q;
        }
        Ok((expr, p))
    }

    /// One filter option (`Many` never fails, so neither does this; the
    /// `Err` case only carries the depth abort).
    fn option(&mut self, pos: usize) -> Result<Option<(Arc<Tok>, usize)>, usize> {
        if self.starts(pos, "#{") {
            match self.token(pos) {
                Ok((tok, e)) if !matches!(&*tok, Tok::Text(_)) => return Ok(Some((tok, e))),
                _ => {}
            }
            if self.too_deep {
                return Err(pos);
            }
        }
        if let Ok((id, e)) = self.identifier(self.ws(pos), false) {
            return Ok(Some((Arc::new(Tok::Text(id)), self.ws(e))));
        }
        if let Ok((s, e)) = self.quoted(pos) {
            return Ok(Some((Arc::new(Tok::Text(s)), e)));
        }
        if let Ok((s, e)) = self.escaped_quoted(pos) {
            return Ok(Some((Arc::new(Tok::Text(s)), e)));
        }
        Ok(None)
    }

    /// `"text"` (no `"` or `#` inside), with surrounding whitespace.
    fn quoted(&self, pos: usize) -> PResult<String> {
        let p = self.ws(pos);
        let ((), mut p) = self.lit(p, "\"")?;
        let start = p;
        while let Some(c) = self.peek(p) {
            if c == '"' || c == '#' {
                break;
            }
            p += c.len_utf8();
        }
        let content = self.src[start..p].to_string();
        let ((), p) = self.lit(p, "\"")?;
        Ok((content, self.ws(p)))
    }

    /// `\"text\"`, with surrounding whitespace.
    fn escaped_quoted(&self, pos: usize) -> PResult<String> {
        let p = self.ws(pos);
        let ((), p) = self.lit(p, "\\\"")?;
        match self.src[p..].find("\\\"") {
            Some(off) => {
                let content = self.src[p..p + off].to_string();
                Ok((content, self.ws(p + off + 2)))
            }
            None => Err(self.src.len()),
        }
    }

    // ---- tokens ----------------------------------------------------------------

    fn token(&mut self, pos: usize) -> Result<(Arc<Tok>, usize), usize> {
        if let Some(r) = self.memo.get(&pos) {
            return r.clone();
        }
        if self.too_deep {
            return Err(pos);
        }
        self.enter(pos)?;
        let r = self.token_uncached(pos);
        self.leave();
        if !self.too_deep {
            self.memo.insert(pos, r.clone());
        }
        r
    }

    fn token_uncached(&mut self, pos: usize) -> Result<(Arc<Tok>, usize), usize> {
        let mut err = pos;
        if self.starts(pos, "#{") {
            for rule in 0..4 {
                let r = match rule {
                    0 => self.conditional(pos),
                    1 => self.calculation(pos),
                    2 => self.repetition(pos),
                    _ => self.substitution(pos),
                };
                match r {
                    Ok((t, e)) => return Ok((Arc::new(t), e)),
                    Err(e) => {
                        if self.too_deep {
                            return Err(e);
                        }
                        err = err.max(e);
                    }
                }
            }
        }
        match self.text(pos) {
            Ok((t, e)) => Ok((Arc::new(Tok::Text(t)), e)),
            Err(e) => Err(err.max(e)),
        }
    }

    /// `#{` but not `#{/`.
    fn ldelim(&self, pos: usize) -> PResult<()> {
        if self.starts(pos, "#{/") {
            return Err(pos);
        }
        self.lit(pos, "#{")
    }

    fn substitution(&mut self, pos: usize) -> PResult<Tok> {
        let ((), p) = self.ldelim(pos)?;
        let p = self.ws(p);
        let (expr, p) = self.expression(p)?;
        let p = self.ws(p);
        let ((), p) = self.lit(p, "}")?;
        Ok((Tok::Subst(expr), p))
    }

    fn text(&self, pos: usize) -> PResult<String> {
        let mut out = String::new();
        let mut p = pos;
        loop {
            match self.peek(p) {
                None => break,
                Some('#') => {
                    if p + 1 == self.src.len() {
                        out.push('#');
                        p += 1;
                    } else if self.starts(p, "##") && self.followed_by(p + 2, "#{") {
                        out.push('#');
                        p += 2;
                    } else if self.starts(p, "##{") {
                        out.push_str("#{");
                        p += 3;
                    } else {
                        match self.peek(p + 1) {
                            Some(c) if c != '{' => {
                                out.push('#');
                                out.push(c);
                                p += 1 + c.len_utf8();
                            }
                            _ => {
                                if p == pos {
                                    return Err(p + 1);
                                }
                                break;
                            }
                        }
                    }
                }
                Some(c) => {
                    let start = p;
                    p += c.len_utf8();
                    while let Some(c) = self.peek(p) {
                        if c == '#' {
                            break;
                        }
                        p += c.len_utf8();
                    }
                    out.push_str(&self.src[start..p]);
                }
            }
        }
        if p == pos {
            return Err(pos);
        }
        Ok((out, p))
    }

    /// `Token.Many()` for a body: stops at the first position where no token
    /// parses.
    fn body(&mut self, pos: usize) -> PResult<Vec<Arc<Tok>>> {
        self.if_body_with(pos, false, false)
    }

    fn is_elseif(&self, pos: usize) -> bool {
        self.starts(pos, "#{elseif")
            && self
                .peek(pos + "#{elseif".len())
                .is_some_and(char::is_whitespace)
    }

    fn if_body(&mut self, pos: usize, allow_elseif: bool) -> PResult<Vec<Arc<Tok>>> {
        self.if_body_with(pos, true, allow_elseif)
    }

    fn if_body_with(
        &mut self,
        mut pos: usize,
        stop_at_else: bool,
        stop_at_elseif: bool,
    ) -> PResult<Vec<Arc<Tok>>> {
        let mut toks = Vec::new();
        loop {
            if (stop_at_else && self.starts(pos, "#{else}"))
                || (stop_at_elseif && self.is_elseif(pos))
            {
                break;
            }
            match self.token(pos) {
                Ok((t, e)) => {
                    push_tok(&mut toks, t);
                    pos = e;
                }
                Err(e) => {
                    if self.too_deep {
                        return Err(e);
                    }
                    break;
                }
            }
        }
        Ok((toks, pos))
    }

    fn condition(&mut self, pos: usize) -> PResult<Condition> {
        let mut err = pos;
        // ExpressionsMatch
        match (|| {
            let p = self.ws(pos);
            let (left, p) = self.expression(p)?;
            let p = self.ws(p);
            let (eq, p) = self.eq_op(p)?;
            let p = self.ws(p);
            let (right, p) = self.expression(p)?;
            Ok((Condition::Expr { left, eq, right }, self.ws(p)))
        })() {
            Ok(r) => return Ok(r),
            Err(e) => err = err.max(e),
        }
        // LeftStringMatch
        match (|| {
            let (s, p) = self.quoted(pos).or_else(|_| self.escaped_quoted(pos))?;
            let (eq, p) = self.eq_op(p)?;
            let p = self.ws(p);
            let (left, p) = self.expression(p)?;
            Ok((Condition::Str { left, eq, right: s }, self.ws(p)))
        })() {
            Ok(r) => return Ok(r),
            Err(e) => err = err.max(e),
        }
        // RightStringMatch
        match (|| {
            let p = self.ws(pos);
            let (left, p) = self.expression(p)?;
            let p = self.ws(p);
            let (eq, p) = self.eq_op(p)?;
            let (s, p) = self.quoted(p).or_else(|_| self.escaped_quoted(p))?;
            Ok((Condition::Str { left, eq, right: s }, self.ws(p)))
        })() {
            Ok(r) => return Ok(r),
            Err(e) => err = err.max(e),
        }
        // TruthyMatch
        let p = self.ws(pos);
        match self.expression(p) {
            Ok((e, p)) => Ok((Condition::Truthy(e), self.ws(p))),
            Err(e) => Err(err.max(e)),
        }
    }

    fn eq_op(&self, pos: usize) -> PResult<bool> {
        let p = self.ws(pos);
        if let Ok(((), e)) = self.lit(p, "==") {
            return Ok((true, self.ws(e)));
        }
        match self.lit(p, "!=") {
            Ok(((), e)) => Ok((false, self.ws(e))),
            Err(e) => Err(e),
        }
    }

    fn conditional(&mut self, pos: usize) -> PResult<Tok> {
        let ((), p) = self.ldelim(pos)?;
        let p = self.ws(p);
        let (is_if, p) = match self.keyword(p, "if") {
            Ok(((), e)) => (true, e),
            Err(e1) => match self.keyword(p, "unless") {
                Ok(((), e)) => (false, e),
                Err(e2) => return Err(e1.max(e2)),
            },
        };
        // WhiteSpace.AtLeastOnce()
        if !self.peek(p).is_some_and(char::is_whitespace) {
            return Err(p);
        }
        let p = self.ws(p);
        let (cond, p) = self.condition(p)?;
        let p = self.ws(p);
        let ((), p) = self.lit(p, "}")?;
        let (first, mut p) = self.if_body(p, is_if)?;
        let mut elseifs = Vec::new();
        if is_if {
            while self.is_elseif(p) {
                let q = self.ws(p + "#{elseif".len());
                let Ok((c, q)) = self.condition(q) else { break };
                let q = self.ws(q);
                let Ok(((), q)) = self.lit(q, "}") else { break };
                let (b, q) = self.if_body(q, true)?;
                elseifs.push((c, b));
                p = q;
            }
        }
        let mut else_body = Vec::new();
        if self.starts(p, "#{else}") {
            let (b, q) = self.body(p + "#{else}".len())?;
            else_body = b;
            p = q;
        }
        let end = if is_if { "#{/if}" } else { "#{/unless}" };
        let ((), p) = self.lit(p, end)?;
        let mut falsy = else_body;
        for (c, b) in elseifs.into_iter().rev() {
            falsy = vec![Arc::new(Tok::Cond {
                cond: c,
                truthy: b,
                falsy,
            })];
        }
        let tok = if is_if {
            Tok::Cond {
                cond,
                truthy: first,
                falsy,
            }
        } else {
            Tok::Cond {
                cond,
                truthy: falsy,
                falsy: first,
            }
        };
        Ok((tok, p))
    }

    fn repetition(&mut self, pos: usize) -> PResult<Tok> {
        let ((), p) = self.ldelim(pos)?;
        let p = self.ws(p);
        let ((), p) = self.keyword(p, "each")?;
        if !self.peek(p).is_some_and(char::is_whitespace) {
            return Err(p);
        }
        let p = self.ws(p);
        let (var, p) = self.identifier(p, true)?;
        let p = self.ws(p);
        let ((), p) = self.keyword(p, "in")?;
        let p = self.ws(p);
        let (coll, p) = self.symbol(p)?;
        let p = self.ws(p);
        let ((), p) = self.lit(p, "}")?;
        let (body, p) = self.body(p)?;
        let ((), p) = self.lit(p, "#{/each}")?;
        Ok((Tok::Each { var, coll, body }, p))
    }

    fn calculation(&mut self, pos: usize) -> PResult<Tok> {
        let ((), p) = self.ldelim(pos)?;
        let p = self.ws(p);
        let ((), p) = self.keyword(p, "calc")?;
        if !self.peek(p).is_some_and(char::is_whitespace) {
            return Err(p);
        }
        let p = self.ws(p);
        let (c, p) = self.calc_expr(p)?;
        let p = self.ws(p);
        let ((), p) = self.lit(p, "}")?;
        Ok((Tok::Calc(c), p))
    }

    fn calc_op(&self, pos: usize, ops: &[char]) -> Option<(char, usize)> {
        let p = self.ws(pos);
        let c = self.peek(p)?;
        if ops.contains(&c) {
            Some((c, self.ws(p + 1)))
        } else {
            None
        }
    }

    fn calc_expr(&mut self, pos: usize) -> PResult<Calc> {
        self.enter(pos)?;
        let r = self.calc_chain(pos, &['+', '-'], Self::calc_term);
        self.leave();
        r
    }

    fn calc_term(&mut self, pos: usize) -> PResult<Calc> {
        self.calc_chain(pos, &['*', '/', '%'], Self::calc_factor)
    }

    fn calc_chain(
        &mut self,
        pos: usize,
        ops: &[char],
        operand: fn(&mut Self, usize) -> PResult<Calc>,
    ) -> PResult<Calc> {
        let (mut left, mut p) = operand(self, pos)?;
        while let Some((op, q)) = self.calc_op(p, ops) {
            match operand(self, q) {
                Ok((right, e)) => {
                    left = Calc::Op(Box::new(left), op, Box::new(right));
                    p = e;
                }
                Err(_) => break,
            }
        }
        Ok((left, p))
    }

    fn calc_factor(&mut self, pos: usize) -> PResult<Calc> {
        if self.peek(pos) == Some('(') {
            let (e, p) = self.calc_expr(pos + 1)?;
            let ((), p) = self.lit(p, ")")?;
            return Ok((e, p));
        }
        // Parse.Decimal: digits with an optional fraction, or a bare fraction.
        let mut p = pos;
        while self.peek(p).is_some_and(|c| c.is_ascii_digit()) {
            p += 1;
        }
        let int_end = p;
        if self.peek(p) == Some('.') && self.peek(p + 1).is_some_and(|c| c.is_ascii_digit()) {
            p += 1;
            while self.peek(p).is_some_and(|c| c.is_ascii_digit()) {
                p += 1;
            }
        }
        if p > pos
            && (int_end > pos || p > int_end)
            && let Ok(v) = self.src[pos..p].parse::<f64>()
        {
            return Ok((Calc::Const(v), p));
        }
        if self.peek(pos) == Some('{') {
            let q = self.ws(pos + 1);
            let (sym, q) = self.symbol(q)?;
            let q = self.ws(q);
            let ((), q) = self.lit(q, "}")?;
            return Ok((Calc::Var(sym), q));
        }
        let (sym, p) = self.symbol(pos)?;
        Ok((Calc::Var(sym), self.ws(p)))
    }
}

// ---- re-rendering (Octostache's ToString) -----------------------------------------

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for step in &self.steps {
            match step {
                Step::Ident(id) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(id)?;
                }
                Step::Index(ix) => write!(f, "[{ix}]")?,
                Step::SymbolIndex(s) => write!(f, "[#{{{s}}}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Symbol(s) => write!(f, "{s}"),
            Expr::Call {
                function,
                argument,
                options,
            } => {
                write!(f, "{argument} | {function}")?;
                for o in options {
                    write!(f, " {o}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Calc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Calc::Const(v) => f.write_str(&crate::filters::format_double(*v)),
            Calc::Var(s) => write!(f, "{s}"),
            Calc::Op(l, op, r) => write!(f, "{l}{op}{r}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = |eq: bool| if eq { "==" } else { "!=" };
        match self {
            Condition::Truthy(e) => write!(f, "{e}"),
            Condition::Str { left, eq, right } => write!(f, "{left} {} \"{right}\" ", op(*eq)),
            Condition::Expr { left, eq, right } => write!(f, "{left} {} {right} ", op(*eq)),
        }
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Text(t) => f.write_str(&t.replace("#{", "##{")),
            Tok::Subst(e) => write!(f, "#{{{e}}}"),
            Tok::Calc(c) => write!(f, "#{{{c}}}"),
            Tok::Cond {
                cond,
                truthy,
                falsy,
            } => {
                write!(f, "#{{if {cond}}}")?;
                for t in truthy {
                    write!(f, "{t}")?;
                }
                if !falsy.is_empty() {
                    f.write_str("#{else}")?;
                    for t in falsy {
                        write!(f, "{t}")?;
                    }
                }
                f.write_str("#{/if}")
            }
            Tok::Each { var, coll, body } => {
                write!(f, "#{{each {var} in {coll}}}")?;
                for t in body {
                    write!(f, "{t}")?;
                }
                f.write_str("#{/each}")
            }
        }
    }
}
