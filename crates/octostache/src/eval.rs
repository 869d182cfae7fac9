//! The evaluator: walks parsed templates against the variable tree, following
//! Octostache's `TemplateEvaluator.cs` and `EvaluationContext.cs`.
//!
//! Lookups walk the scope chain from the innermost `#{each}` scope out to the
//! variables; a value found is itself evaluated as a template (with the strict
//! grammar: a value that does not parse is used as it is) in the scope it was
//! found in. JSON values are walked into when a path goes past a variable.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use crate::filters::{self, Invoke};
use crate::json::{self, Json};
use crate::parser::{self, Calc, Condition, Expr, Parsed, Step, Symbol, Tok};
use crate::tree::Tree;
use crate::{EvalContext, EvaluationError, Rendered, Warning, is_truthy};

/// How deeply variable values may refer to other variables before evaluation
/// stops (values are then used unevaluated, with a warning).
const MAX_EVAL_DEPTH: usize = 100;

type Res<T> = Result<T, EvaluationError>;

#[derive(Clone, Debug)]
enum Bind {
    Node(usize),
    Owned(Rc<Owned>),
}

#[derive(Debug, Default)]
struct Owned {
    item: Option<String>,
    children: Vec<(String, Bind)>,
}

fn owned(item: Option<String>, children: Vec<(String, Bind)>) -> Bind {
    Bind::Owned(Rc::new(Owned { item, children }))
}

fn text_bind(s: impl Into<String>) -> Bind {
    owned(Some(s.into()), Vec::new())
}

struct Scope<'a> {
    frame: Bind,
    parent: Option<&'a Scope<'a>>,
}

enum RStep {
    Ident(String),
    Index(String),
    Unresolved,
}

/// Why an expression produced no value.
enum Why {
    UnknownVariable(String),
    UnknownFilter(String),
    BadArguments(String),
}

struct Out {
    value: Option<String>,
    why: Option<Why>,
}

struct Evaluator<'t> {
    tree: &'t Tree,
    ctx: &'t EvalContext,
    warnings: Vec<Warning>,
    /// Expressions being resolved: (lowercase key, display form).
    stack: Vec<(String, String)>,
    depth: usize,
    parse_cache: HashMap<String, Rc<Parsed>>,
    /// Evaluated values of variables found at the root scope.
    value_cache: HashMap<usize, String>,
}

pub(crate) fn evaluate(tree: &Tree, template: &str, ctx: &EvalContext) -> Res<Rendered> {
    let mut ev = Evaluator::new(tree, ctx);
    let parsed = parser::parse_template(template);
    if parsed.too_deep {
        return Ok(Rendered {
            text: template.to_string(),
            warnings: vec![Warning {
                message: format!(
                    "template nests more than {} levels deep and was left unevaluated",
                    parser::MAX_PARSE_DEPTH
                ),
            }],
        });
    }
    let root = Scope {
        frame: Bind::Node(0),
        parent: None,
    };
    let mut out = String::with_capacity(template.len());
    ev.eval_tokens(&parsed.tokens, &root, &mut out)?;
    Ok(Rendered {
        text: out,
        warnings: ev.finish(),
    })
}

pub(crate) fn get(tree: &Tree, name: &str, raw: &str, ctx: &EvalContext) -> Res<Option<String>> {
    let mut ev = Evaluator::new(tree, ctx);
    if let Some(sym) = parser::parse_symbol_path(name) {
        let display = sym.to_string();
        ev.stack.push((display.to_lowercase(), display));
    }
    let root = Scope {
        frame: Bind::Node(0),
        parent: None,
    };
    ev.eval_item(raw, &root).map(Some)
}

impl<'t> Evaluator<'t> {
    fn new(tree: &'t Tree, ctx: &'t EvalContext) -> Self {
        Evaluator {
            tree,
            ctx,
            warnings: Vec::new(),
            stack: Vec::new(),
            depth: 0,
            parse_cache: HashMap::new(),
            value_cache: HashMap::new(),
        }
    }

    fn finish(self) -> Vec<Warning> {
        let mut seen = HashSet::new();
        self.warnings
            .into_iter()
            .filter(|w| seen.insert(w.message.clone()))
            .collect()
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(Warning { message });
    }

    // ---- bindings ----------------------------------------------------------------------

    fn item(&self, b: &Bind) -> Option<String> {
        match b {
            Bind::Node(n) => self.tree.nodes[*n].item.clone(),
            Bind::Owned(o) => o.item.clone(),
        }
    }

    fn child(&self, b: &Bind, lower: &str) -> Option<Bind> {
        match b {
            Bind::Node(n) => {
                let node = &self.tree.nodes[*n];
                if let Some(&c) = node.children.get(lower) {
                    return Some(Bind::Node(c));
                }
                // The synthesized `x.Key` of an indexed item (IterationFixture.cs).
                match (&node.key, lower) {
                    (Some(k), "key") => Some(text_bind(k.clone())),
                    _ => None,
                }
            }
            Bind::Owned(o) => o
                .children
                .iter()
                .find(|(k, _)| k == lower)
                .map(|(_, b)| b.clone()),
        }
    }

    fn index(&self, b: &Bind, key: &str) -> Option<Bind> {
        let Bind::Node(n) = b else { return None };
        let node = &self.tree.nodes[*n];
        if key == "*"
            && let Some(&first) = node.indexed.first()
        {
            return Some(Bind::Node(first));
        }
        node.index_map
            .get(&key.to_lowercase())
            .map(|&c| Bind::Node(c))
    }

    fn indexed(&self, b: &Bind) -> Vec<Bind> {
        match b {
            Bind::Node(n) => self.tree.nodes[*n]
                .indexed
                .iter()
                .map(|&c| Bind::Node(c))
                .collect(),
            Bind::Owned(_) => Vec::new(),
        }
    }

    // ---- resolution --------------------------------------------------------------------

    fn parsed(&mut self, text: &str) -> Rc<Parsed> {
        if let Some(p) = self.parse_cache.get(text) {
            return p.clone();
        }
        let p = Rc::new(parser::parse_template(text));
        self.parse_cache.insert(text.to_string(), p.clone());
        p
    }

    /// Evaluates a variable's value as a template in `scope` (Octostache's
    /// `ParseTemplate`): a value that does not parse strictly is used as it is.
    fn eval_item(&mut self, item: &str, scope: &Scope<'_>) -> Res<String> {
        if !item.contains("#{") {
            return Ok(item.to_string());
        }
        let parsed = self.parsed(item);
        if parsed.had_error {
            return Ok(item.to_string());
        }
        if self.depth >= MAX_EVAL_DEPTH {
            let name = self.stack.last().map_or(String::new(), |(_, d)| d.clone());
            self.warn(format!(
                "variable values nest more than {MAX_EVAL_DEPTH} levels deep; {name} was left unevaluated"
            ));
            return Ok(item.to_string());
        }
        self.depth += 1;
        let mut out = String::with_capacity(item.len());
        let r = self.eval_tokens(&parsed.tokens, scope, &mut out);
        self.depth -= 1;
        r.map(|()| out)
    }

    /// Resolves a symbol (Octostache's `WalkTo` + `ParseTemplate`): the binding
    /// found and its evaluated value.
    fn resolve(&mut self, sym: &Symbol, scope: &Scope<'_>) -> Res<Option<(Bind, Option<String>)>> {
        let display = sym.to_string();
        let key = display.to_lowercase();
        if let Some(start) = self.stack.iter().position(|(k, _)| *k == key) {
            let mut chain: Vec<String> =
                self.stack[start..].iter().map(|(_, d)| d.clone()).collect();
            chain.push(display);
            return Err(EvaluationError::Recursion { chain });
        }
        self.stack.push((key, display));
        let r = self.resolve_inner(sym, scope);
        self.stack.pop();
        r
    }

    fn resolve_inner(
        &mut self,
        sym: &Symbol,
        scope: &Scope<'_>,
    ) -> Res<Option<(Bind, Option<String>)>> {
        let mut steps = Vec::with_capacity(sym.steps.len());
        for step in &sym.steps {
            steps.push(match step {
                Step::Ident(id) => RStep::Ident(id.clone()),
                Step::Index(ix) => RStep::Index(ix.clone()),
                Step::SymbolIndex(s) => match self.resolve(s, scope)? {
                    Some((_, Some(v))) => RStep::Index(v),
                    _ => RStep::Unresolved,
                },
            });
        }
        let mut s: &Scope<'_> = scope;
        loop {
            match self.walk(&steps, s)? {
                Walk::Found(b) => {
                    let value = self.value_of(&b, s)?;
                    return Ok(Some((b, value)));
                }
                Walk::Abort => return Ok(None),
                Walk::NotHere => match s.parent {
                    Some(p) => s = p,
                    None => return Ok(None),
                },
            }
        }
    }

    fn value_of(&mut self, b: &Bind, found_in: &Scope<'_>) -> Res<Option<String>> {
        let Some(item) = self.item(b) else {
            return Ok(None);
        };
        let cacheable = match b {
            Bind::Node(n) if found_in.parent.is_none() => Some(*n),
            _ => None,
        };
        if let Some(n) = cacheable
            && let Some(v) = self.value_cache.get(&n)
        {
            return Ok(Some(v.clone()));
        }
        let v = self.eval_item(&item, found_in)?;
        if let Some(n) = cacheable {
            self.value_cache.insert(n, v.clone());
        }
        Ok(Some(v))
    }

    fn walk(&mut self, steps: &[RStep], scope: &Scope<'_>) -> Res<Walk> {
        let mut cur = scope.frame.clone();
        for step in steps {
            let next = match step {
                RStep::Ident(id) => match self.child(&cur, &id.to_lowercase()) {
                    Some(c) => Some(c),
                    None => self.json_step(&cur, id, scope)?,
                },
                RStep::Index(ix) => match self.index(&cur, ix) {
                    Some(c) => Some(c),
                    None => self.json_step(&cur, ix, scope)?,
                },
                RStep::Unresolved => return Ok(Walk::Abort),
            };
            match next {
                Some(n) => cur = n,
                None => return Ok(Walk::NotHere),
            }
        }
        Ok(Walk::Found(cur))
    }

    /// Octostache's `TryCustomParsers`: walks one step into a JSON value.
    fn json_step(&mut self, parent: &Bind, property: &str, scope: &Scope<'_>) -> Res<Option<Bind>> {
        let Some(item) = self.item(parent) else {
            return Ok(None);
        };
        if item.is_empty()
            || property.is_empty()
            || !json::may_be_json(&item) && !item.contains("#{")
        {
            return Ok(None);
        }
        let text = if item.contains("#{") {
            let mark = self.warnings.len();
            let r = match parent {
                Bind::Node(_) => self.value_of(parent, scope),
                Bind::Owned(_) => self.eval_item(&item, scope).map(Some),
            };
            self.warnings.truncate(mark);
            match r {
                Ok(Some(t)) => t,
                Ok(None) => item,
                // A value that refers to itself is read as it is.
                Err(EvaluationError::Recursion { .. }) => item,
            }
        } else {
            item
        };
        let Some(value) = json::parse(&text) else {
            return Ok(None);
        };
        Ok(match value {
            Json::Object(props) => Some(match props.iter().find(|(k, _)| k == property) {
                Some((_, v)) => text_bind(v.to_binding_text()),
                None => text_bind(""),
            }),
            Json::Array(items) => match property.trim().parse::<i64>() {
                Ok(i) if i >= 0 => Some(text_bind(
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| items.get(i))
                        .map_or(String::new(), Json::to_binding_text),
                )),
                _ => None,
            },
            _ => None,
        })
    }

    fn resolve_value(&mut self, sym: &Symbol, scope: &Scope<'_>) -> Res<Option<String>> {
        Ok(self.resolve(sym, scope)?.and_then(|(_, v)| v))
    }

    /// The items an `#{each}` iterates (Octostache's `ResolveAll`).
    fn resolve_all(&mut self, coll: &Symbol, scope: &Scope<'_>) -> Res<Vec<Bind>> {
        let Some((b, value)) = self.resolve(coll, scope)? else {
            return Ok(Vec::new());
        };
        let Some(value) = value else {
            return Ok(self.indexed(&b));
        };
        if let Some(j) = json::parse(&value) {
            match j {
                Json::Array(items) => {
                    return Ok(items
                        .iter()
                        .map(|v| text_bind(v.to_binding_text()))
                        .collect());
                }
                Json::Object(props) => {
                    return Ok(props
                        .iter()
                        .map(|(k, v)| {
                            owned(
                                Some(k.clone()),
                                vec![
                                    ("key".to_string(), text_bind(k.clone())),
                                    ("value".to_string(), text_bind(v.to_binding_text())),
                                ],
                            )
                        })
                        .collect());
                }
                _ => {}
            }
        }
        Ok(value.split(',').map(text_bind).collect())
    }

    // ---- tokens ------------------------------------------------------------------------

    fn eval_tokens(&mut self, toks: &[Arc<Tok>], scope: &Scope<'_>, out: &mut String) -> Res<()> {
        for t in toks {
            self.eval_token(t, scope, out)?;
        }
        Ok(())
    }

    fn eval_token(&mut self, tok: &Tok, scope: &Scope<'_>, out: &mut String) -> Res<()> {
        match tok {
            Tok::Text(t) => out.push_str(t),
            Tok::Subst(expr) => {
                let r = self.calculate(expr, scope)?;
                match r.value {
                    Some(v) => out.push_str(&v),
                    None => {
                        if let Expr::Call { function, .. } = expr
                            && function.eq_ignore_ascii_case("null")
                        {
                            return Ok(());
                        }
                        let echo = tok.to_string();
                        self.warn_echo(r.why, &echo);
                        out.push_str(&echo);
                    }
                }
            }
            Tok::Cond {
                cond,
                truthy,
                falsy,
            } => self.eval_cond(tok, cond, truthy, falsy, scope, out)?,
            Tok::Each { var, coll, body } => {
                let items = self.resolve_all(coll, scope)?;
                let n = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let flag = |b: bool| text_bind(if b { "True" } else { "False" });
                    let each = owned(
                        None,
                        vec![
                            ("index".to_string(), text_bind(i.to_string())),
                            ("first".to_string(), flag(i == 0)),
                            ("last".to_string(), flag(i + 1 == n)),
                        ],
                    );
                    let specials = owned(
                        None,
                        vec![(
                            "template".to_string(),
                            owned(None, vec![("each".to_string(), each)]),
                        )],
                    );
                    let locals = owned(
                        None,
                        vec![
                            ("octopus".to_string(), specials),
                            (var.to_lowercase(), item),
                        ],
                    );
                    let child = Scope {
                        frame: locals,
                        parent: Some(scope),
                    };
                    self.eval_tokens(body, &child, out)?;
                }
            }
            Tok::Calc(c) => match self.eval_calc(c, scope)? {
                Some(v) => out.push_str(&filters::format_double(v)),
                None => {
                    let echo = tok.to_string();
                    self.warn(format!("could not calculate {echo}, it was left as it is"));
                    out.push_str(&echo);
                }
            },
        }
        Ok(())
    }

    fn warn_echo(&mut self, why: Option<Why>, echo: &str) {
        let message = match why {
            Some(Why::UnknownVariable(name)) => {
                format!("unknown variable {name} was left as {echo}")
            }
            Some(Why::UnknownFilter(f)) => format!("unknown filter {f}"),
            Some(Why::BadArguments(f)) => format!("filter {f} cannot use its arguments"),
            None => format!("could not evaluate {echo}, it was left as it is"),
        };
        self.warn(message);
    }

    fn eval_cond(
        &mut self,
        tok: &Tok,
        cond: &Condition,
        truthy: &[Arc<Tok>],
        falsy: &[Arc<Tok>],
        scope: &Scope<'_>,
        out: &mut String,
    ) -> Res<()> {
        let left = match cond {
            Condition::Truthy(l)
            | Condition::Str { left: l, .. }
            | Condition::Expr { left: l, .. } => l,
        };
        let Some(lhs) = self.operand(left, scope)? else {
            let echo = tok.to_string();
            self.warn(format!(
                "could not evaluate the condition of {echo}, it was left as it is"
            ));
            out.push_str(&echo);
            return Ok(());
        };
        let holds = match cond {
            Condition::Truthy(_) => is_truthy(&lhs),
            Condition::Str { eq, right, .. } => (lhs == *right) == *eq,
            Condition::Expr { eq, right, .. } => {
                let Some(rhs) = self.operand(right, scope)? else {
                    let echo = tok.to_string();
                    self.warn(format!(
                        "could not evaluate the condition of {echo}, it was left as it is"
                    ));
                    out.push_str(&echo);
                    return Ok(());
                };
                (lhs == rhs) == *eq
            }
        };
        self.eval_tokens(if holds { truthy } else { falsy }, scope, out)
    }

    /// One side of a condition: a missing variable is `""`; a filter chain that
    /// cannot be evaluated is `None`.
    fn operand(&mut self, e: &Expr, scope: &Scope<'_>) -> Res<Option<String>> {
        match e {
            Expr::Symbol(s) => Ok(Some(self.resolve_value(s, scope)?.unwrap_or_default())),
            Expr::Call { .. } => Ok(self.calculate(e, scope)?.value),
        }
    }

    fn calculate(&mut self, e: &Expr, scope: &Scope<'_>) -> Res<Out> {
        match e {
            Expr::Symbol(s) => {
                let value = self.resolve_value(s, scope)?;
                let why = match (&value, s.steps.is_empty()) {
                    (None, false) => Some(Why::UnknownVariable(s.to_string())),
                    _ => None,
                };
                Ok(Out { value, why })
            }
            Expr::Call {
                function,
                argument,
                options,
            } => {
                let arg = self.calculate(argument, scope)?;
                let mut opts = Vec::with_capacity(options.len());
                for o in options {
                    let mut s = String::new();
                    self.eval_token(o, scope, &mut s)?;
                    opts.push(s);
                }
                match filters::invoke(function, arg.value.as_deref(), &opts, self.ctx) {
                    Invoke::Unknown => Ok(Out {
                        value: None,
                        why: Some(Why::UnknownFilter(function.clone())),
                    }),
                    Invoke::Done(Some(v)) => Ok(Out {
                        value: Some(v),
                        why: None,
                    }),
                    Invoke::Done(None) => {
                        let why = match (arg.value, arg.why) {
                            (None, Some(w)) => w,
                            _ => Why::BadArguments(function.clone()),
                        };
                        Ok(Out {
                            value: None,
                            why: Some(why),
                        })
                    }
                }
            }
        }
    }

    fn eval_calc(&mut self, c: &Calc, scope: &Scope<'_>) -> Res<Option<f64>> {
        Ok(match c {
            Calc::Const(v) => Some(*v),
            Calc::Var(s) => self
                .resolve_value(s, scope)?
                .and_then(|v| filters::parse_double(&v)),
            Calc::Op(l, op, r) => {
                let Some(a) = self.eval_calc(l, scope)? else {
                    return Ok(None);
                };
                let Some(b) = self.eval_calc(r, scope)? else {
                    return Ok(None);
                };
                match op {
                    '+' => Some(a + b),
                    '-' => Some(a - b),
                    '*' => Some(a * b),
                    '/' => Some(a / b),
                    // Whole numbers only; no answer for fractions or a zero divisor
                    // (CalculationToken.cs).
                    _ => modulo(a, b),
                }
            }
        })
    }
}

enum Walk {
    Found(Bind),
    NotHere,
    Abort,
}

fn modulo(a: f64, b: f64) -> Option<f64> {
    let whole = |v: f64| -> Option<i64> {
        if !v.is_finite()
            || v.fract() != 0.0
            || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v)
        {
            None
        } else {
            // In range and whole, so the conversion is exact.
            Some(v as i64)
        }
    };
    let (a, b) = (whole(a)?, whole(b)?);
    if b == 0 {
        return None;
    }
    Some(a.checked_rem(b)? as f64)
}
