//! A small spanned YAML tree built from `saphyr-parser` events.
//!
//! Every node keeps the position where it starts, scalars keep their style
//! (so quoted `"true"` and plain `true` can be told apart) and mapping keys
//! are nodes with their own positions. Aliases are expanded against a strict
//! budget and nesting depth is capped, so hostile input ("billion laughs",
//! ten thousand nested brackets) ends in a diagnostic, never in exhausted
//! memory, a stack overflow or a panic. Duplicate keys (compared
//! case-insensitively) are reported and the later entry dropped.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

/// Largest takofile accepted, in bytes. Real takofiles are a few kilobytes.
pub(crate) const MAX_INPUT_BYTES: usize = 1 << 20;
/// Deepest nesting of sequences and mappings accepted.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most nodes that may be materialised, counting every alias expansion.
pub(crate) const MAX_NODES: usize = 100_000;
/// Most scalar bytes that alias expansions may copy.
pub(crate) const MAX_ALIAS_BYTES: usize = 4 << 20;

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) column: usize,
}

impl Pos {
    fn from_marker(marker: &Marker) -> Pos {
        Pos {
            line: marker.line().max(1),
            column: marker.col() + 1,
        }
    }
}

/// A YAML node with the position where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Where the node starts.
    pub(crate) pos: Pos,
    /// What the node holds.
    pub(crate) value: Value,
}

/// The content of a [`Node`].
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A scalar, with its text as written (after YAML unescaping) and style.
    Scalar(Scalar),
    /// A sequence, in order.
    Sequence(Vec<Node>),
    /// A mapping, in file order, duplicates removed.
    Mapping(Vec<Entry>),
}

/// A scalar's text and style.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    /// The scalar's text.
    pub(crate) text: String,
    /// Plain, quoted or block.
    pub(crate) style: ScalarStyle,
}

impl Scalar {
    /// Whether this is YAML's null: an empty plain scalar, `~` or `null`.
    pub(crate) fn is_null(&self) -> bool {
        self.style == ScalarStyle::Plain
            && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    /// A YAML 1.2 core-schema boolean, for plain scalars only.
    pub(crate) fn as_plain_bool(&self) -> Option<bool> {
        if self.style != ScalarStyle::Plain {
            return None;
        }
        match self.text.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            _ => None,
        }
    }
}

/// One key/value pair of a mapping.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The key node (usually a scalar).
    pub(crate) key: Node,
    /// The value node.
    pub(crate) value: Node,
}

impl Node {
    /// Describes the node's kind for messages: "a list", "a mapping", "text", "nothing".
    pub(crate) fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar(scalar) if scalar.is_null() => "nothing",
            Value::Scalar(_) => "text",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }

    /// The scalar, if this node is one.
    pub(crate) fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }
}

/// A problem found while building the tree.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    /// Where it is.
    pub(crate) pos: Pos,
    /// What is wrong.
    pub(crate) message: String,
    /// How to fix it.
    pub(crate) hint: Option<String>,
}

/// The result of loading: the root (absent after a fatal problem or for an
/// empty stream) and every problem found.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The document's root node.
    pub(crate) root: Option<Node>,
    /// Problems found; when `root` is `None` the last one was fatal.
    pub(crate) problems: Vec<Problem>,
}

enum Frame {
    Sequence {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Node>,
    },
}

struct Anchored {
    node: Node,
    nodes: usize,
    bytes: usize,
    height: usize,
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Anchored>,
    nodes: usize,
    alias_bytes: usize,
    aliases_used: bool,
    documents: usize,
    problems: Vec<Problem>,
}

/// Parses `text` into a spanned tree. Never panics.
pub(crate) fn load(text: &str) -> Loaded {
    let mut builder = Builder {
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        nodes: 0,
        alias_bytes: 0,
        aliases_used: false,
        documents: 0,
        problems: Vec::new(),
    };
    if text.len() > MAX_INPUT_BYTES {
        builder.problems.push(Problem {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "the takofile is {} bytes, more than the {} allowed",
                text.len(),
                MAX_INPUT_BYTES
            ),
            hint: Some("a takofile routes pushes and lists steps; keep scripts in files".into()),
        });
        return Loaded {
            root: None,
            problems: builder.problems,
        };
    }
    match builder.run(text) {
        Ok(()) => {
            if let Some(root) = &builder.root {
                comment_traps(root, text, &mut builder.problems);
            }
            Loaded {
                root: builder.root,
                problems: builder.problems,
            }
        }
        Err(fatal) => {
            builder.problems.push(fatal);
            Loaded {
                root: None,
                problems: builder.problems,
            }
        }
    }
}

/// Finds plain scalars cut short by a YAML comment that was meant as
/// substitution: in `Run: echo "v #{Version}"` the ` #` starts a comment, so
/// the value is `echo "v`. Nothing a user wants looks like that.
fn comment_traps(node: &Node, text: &str, problems: &mut Vec<Problem>) {
    match &node.value {
        Value::Scalar(scalar)
            if scalar.style == ScalarStyle::Plain && !scalar.text.contains('\n') =>
        {
            let Some(line) = text.lines().nth(node.pos.line.saturating_sub(1)) else {
                return;
            };
            let start: usize = line
                .chars()
                .take(node.pos.column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            let Some(rest) = line.get(start..) else {
                return;
            };
            let Some(after) = rest.strip_prefix(scalar.text.as_str()) else {
                return;
            };
            if after.trim_start().starts_with("#{") {
                problems.push(Problem {
                    pos: node.pos,
                    message: format!(
                        "the value stops at {:?}: the ` #{{` after it starts a YAML comment",
                        scalar.text
                    ),
                    hint: Some(
                        "quote the whole value ('...' or \"...\") or write it as a block: `Run: |` and the script on the next lines"
                            .into(),
                    ),
                });
            }
        }
        Value::Scalar(_) => {}
        Value::Sequence(items) => {
            for item in items {
                comment_traps(item, text, problems);
            }
        }
        Value::Mapping(entries) => {
            for entry in entries {
                comment_traps(&entry.value, text, problems);
            }
        }
    }
}

impl Builder {
    fn run(&mut self, text: &str) -> Result<(), Problem> {
        let mut parser = Parser::new_from_str(text);
        while let Some(next) = parser.next_event() {
            let (event, span) = match next {
                Ok(pair) => pair,
                Err(error) => return Err(syntax_problem(error.marker(), error.info())),
            };
            let pos = Pos::from_marker(&span.start);
            match event {
                Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(Problem {
                            pos,
                            message: "a second YAML document starts here".into(),
                            hint: Some("a takofile holds exactly one document; remove the `---` separator and what follows".into()),
                        });
                    }
                }
                Event::Scalar(text, style, anchor, _tag) => {
                    self.count(1, pos)?;
                    let node = Node {
                        pos,
                        value: Value::Scalar(Scalar {
                            text: text.into_owned(),
                            style,
                        }),
                    };
                    self.finish(node, anchor)?;
                }
                Event::SequenceStart(anchor, _tag) => {
                    self.open(pos)?;
                    self.stack.push(Frame::Sequence {
                        pos,
                        anchor,
                        items: Vec::new(),
                    });
                }
                Event::MappingStart(anchor, _tag) => {
                    self.open(pos)?;
                    self.stack.push(Frame::Mapping {
                        pos,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(frame) = self.stack.pop() else {
                        return Err(Problem {
                            pos,
                            message: "invalid YAML: unbalanced end of collection".into(),
                            hint: None,
                        });
                    };
                    let (node, anchor) = match frame {
                        Frame::Sequence { pos, anchor, items } => (
                            Node {
                                pos,
                                value: Value::Sequence(items),
                            },
                            anchor,
                        ),
                        Frame::Mapping {
                            pos,
                            anchor,
                            entries,
                            key,
                        } => {
                            let mut entries = entries;
                            if let Some(key) = key {
                                // A key without a value cannot happen in well-formed
                                // event streams; keep it with a null value.
                                let value = Node {
                                    pos: key.pos,
                                    value: Value::Scalar(Scalar {
                                        text: String::new(),
                                        style: ScalarStyle::Plain,
                                    }),
                                };
                                entries.push(Entry { key, value });
                            }
                            let entries = self.dedup(entries);
                            (
                                Node {
                                    pos,
                                    value: Value::Mapping(entries),
                                },
                                anchor,
                            )
                        }
                    };
                    self.finish(node, anchor)?;
                }
                Event::Alias(id) => {
                    let Some(anchored) = self.anchors.get(&id) else {
                        return Err(Problem {
                            pos,
                            message: "alias to an unknown anchor".into(),
                            hint: Some("define the anchor (&name) before using it (*name)".into()),
                        });
                    };
                    if self.stack.len() + anchored.height > MAX_DEPTH {
                        return Err(depth_problem(pos));
                    }
                    let (nodes, bytes) = (anchored.nodes, anchored.bytes);
                    self.alias_bytes = self.alias_bytes.saturating_add(bytes);
                    if self.alias_bytes > MAX_ALIAS_BYTES {
                        return Err(alias_problem(pos));
                    }
                    if self.nodes.saturating_add(nodes) > MAX_NODES {
                        return Err(alias_problem(pos));
                    }
                    self.nodes += nodes;
                    self.aliases_used = true;
                    let mut node = anchored.node.clone();
                    node.pos = pos;
                    self.push(node)?;
                }
            }
        }
        Ok(())
    }

    fn count(&mut self, nodes: usize, pos: Pos) -> Result<(), Problem> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            if self.aliases_used {
                return Err(alias_problem(pos));
            }
            return Err(Problem {
                pos,
                message: format!("the takofile has more than {MAX_NODES} YAML nodes"),
                hint: Some("a takofile routes pushes and lists steps; keep it small".into()),
            });
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos) -> Result<(), Problem> {
        self.count(1, pos)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(depth_problem(pos));
        }
        Ok(())
    }

    /// A node is complete: remember it if anchored, then attach it.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Problem> {
        if anchor != 0 {
            let (nodes, bytes) = measure(&node);
            // Keeping a copy for later aliases costs as much as the node itself.
            self.count(nodes, node.pos)?;
            let height = height(&node);
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    nodes,
                    bytes,
                    height,
                },
            );
        }
        self.push(node)
    }

    fn push(&mut self, node: Node) -> Result<(), Problem> {
        match self.stack.last_mut() {
            None => {
                if self.root.is_some() {
                    return Err(Problem {
                        pos: node.pos,
                        message: "a second YAML document starts here".into(),
                        hint: Some("a takofile holds exactly one document".into()),
                    });
                }
                self.root = Some(node);
            }
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key) => entries.push(Entry { key, value: node }),
            },
        }
        Ok(())
    }

    fn dedup(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut kept = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(scalar) = entry.key.as_scalar() {
                let folded = scalar.text.to_lowercase();
                if let Some(first) = seen.get(&folded) {
                    self.problems.push(Problem {
                        pos: entry.key.pos,
                        message: format!(
                            "duplicate key {} (first at line {})",
                            scalar.text, first.line
                        ),
                        hint: Some("keys are case-insensitive; keep one of them".into()),
                    });
                    continue;
                }
                seen.insert(folded, entry.key.pos);
            }
            kept.push(entry);
        }
        kept
    }
}

fn syntax_problem(marker: &Marker, info: &str) -> Problem {
    // Whole words: "unprintable" contains "tab" too.
    let mentions_tabs = info
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|word| word == "tab" || word == "tabs");
    let hint = if mentions_tabs {
        Some("indent with spaces; YAML does not allow tabs for indentation".into())
    } else if info.contains("unprintable character") {
        Some("remove the control character (a NUL byte, an escape, ...): YAML allows only printable text; write it as an escape inside double quotes if it is meant".into())
    } else if info.contains("unknown anchor") {
        Some("define the anchor (&name) before using it (*name)".into())
    } else if info.contains("mapping values are not allowed") {
        Some(
            "a value containing `: ` must be quoted, or written as a block: `Run: |` then the script indented on the next lines"
                .into(),
        )
    } else if info.contains("block collection") || info.contains("block mapping") {
        Some("check the indentation: items of one list or map must start in the same column".into())
    } else {
        None
    };
    Problem {
        pos: Pos::from_marker(marker),
        message: format!("invalid YAML: {info}"),
        hint,
    }
}

fn depth_problem(pos: Pos) -> Problem {
    Problem {
        pos,
        message: format!("YAML nested deeper than {MAX_DEPTH} levels"),
        hint: Some("a takofile needs only a few levels of nesting".into()),
    }
}

fn alias_problem(pos: Pos) -> Problem {
    Problem {
        pos,
        message: "YAML aliases expand to too much data".into(),
        hint: Some(format!(
            "aliases may expand to at most {MAX_NODES} nodes and {MAX_ALIAS_BYTES} bytes in all"
        )),
    }
}

/// Number of nodes and scalar bytes in a subtree. Depth is capped, so the
/// recursion is bounded.
fn measure(node: &Node) -> (usize, usize) {
    match &node.value {
        Value::Scalar(scalar) => (1, scalar.text.len()),
        Value::Sequence(items) => items.iter().fold((1, 0), |(n, b), item| {
            let (in_, ib) = measure(item);
            (n.saturating_add(in_), b.saturating_add(ib))
        }),
        Value::Mapping(entries) => entries.iter().fold((1, 0), |(n, b), entry| {
            let (kn, kb) = measure(&entry.key);
            let (vn, vb) = measure(&entry.value);
            (
                n.saturating_add(kn).saturating_add(vn),
                b.saturating_add(kb).saturating_add(vb),
            )
        }),
    }
}

/// Nesting levels a subtree adds (0 for a scalar).
fn height(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 0,
        Value::Sequence(items) => 1 + items.iter().map(height).max().unwrap_or(0),
        Value::Mapping(entries) => {
            1 + entries
                .iter()
                .map(|entry| height(&entry.key).max(height(&entry.value)))
                .max()
                .unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let loaded = load(text);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.root.expect("a root")
    }

    #[test]
    fn positions_are_one_based() {
        let node = root("Project: x\nMappings:\n  - Branch: master\n    Environment: Production\n");
        let Value::Mapping(entries) = &node.value else {
            panic!("not a mapping")
        };
        assert_eq!(entries[0].key.pos, Pos { line: 1, column: 1 });
        assert_eq!(
            entries[0].value.pos,
            Pos {
                line: 1,
                column: 10
            }
        );
        assert_eq!(entries[1].key.pos, Pos { line: 2, column: 1 });
        let Value::Sequence(items) = &entries[1].value.value else {
            panic!("not a sequence")
        };
        let Value::Mapping(mapping) = &items[0].value else {
            panic!("not a mapping")
        };
        assert_eq!(mapping[0].key.pos, Pos { line: 3, column: 5 });
        assert_eq!(
            mapping[1].value.pos,
            Pos {
                line: 4,
                column: 18
            }
        );
    }

    #[test]
    fn quoted_scalars_keep_their_style() {
        let node = root("a: \"true\"\nb: true\n");
        let Value::Mapping(entries) = &node.value else {
            panic!("not a mapping")
        };
        assert_eq!(
            entries[0].value.as_scalar().and_then(Scalar::as_plain_bool),
            None
        );
        assert_eq!(
            entries[1].value.as_scalar().and_then(Scalar::as_plain_bool),
            Some(true)
        );
    }

    #[test]
    fn aliases_expand() {
        let node = root("a: &x [1, 2]\nb: *x\n");
        let Value::Mapping(entries) = &node.value else {
            panic!("not a mapping")
        };
        assert!(matches!(&entries[1].value.value, Value::Sequence(items) if items.len() == 2));
        assert_eq!(entries[1].value.pos, Pos { line: 2, column: 4 });
    }

    #[test]
    fn duplicate_keys_are_reported_case_insensitively() {
        let loaded = load("Project: a\nproject: b\n");
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].pos, Pos { line: 2, column: 1 });
        assert!(loaded.root.is_some());
    }

    #[test]
    fn billion_laughs_is_a_problem_not_a_blow_up() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..12 {
            let refs = vec![format!("*a{}", level - 1); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let loaded = load(&text);
        assert!(loaded.root.is_none());
        let last = loaded.problems.last().expect("a problem");
        assert!(last.message.contains("aliases"), "{}", last.message);
    }

    #[test]
    fn deep_nesting_is_a_problem() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let loaded = load(&text);
        assert!(loaded.root.is_none());
        assert!(!loaded.problems.is_empty());
    }
}
