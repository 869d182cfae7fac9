//! The variables arranged as Octostache's `Binding` tree: each name is parsed as
//! a symbol path (`Octopus.Action[Web].Output.X`) and its value hangs at the end
//! of that path. Identifier children and index children are kept apart and
//! looked up case-insensitively; index children keep their insertion order
//! (what `#{each}` iterates).

use std::collections::HashMap;

use crate::parser::{self, Step};

/// One node of the tree.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// The value at this node: the variable's value, or, for a node created by
    /// an index step, the index key until a value is set.
    pub(crate) item: Option<String>,
    /// For a node created by an index step: its key (the synthesized `x.Key`).
    pub(crate) key: Option<String>,
    pub(crate) children: HashMap<String, usize>,
    pub(crate) indexed: Vec<usize>,
    pub(crate) index_map: HashMap<String, usize>,
}

/// The whole tree; node 0 is the root.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
}

impl Tree {
    pub(crate) fn build(entries: &[(String, String)]) -> Tree {
        let mut t = Tree {
            nodes: vec![Node::default()],
        };
        for (name, value) in entries {
            let Some(sym) = parser::parse_symbol_path(name) else {
                continue;
            };
            let mut cur = 0;
            for step in &sym.steps {
                cur = match step {
                    Step::Ident(id) => t.child_or_insert(cur, id),
                    Step::Index(ix) => t.index_or_insert(cur, ix),
                    Step::SymbolIndex(s) => t.index_or_insert(cur, &format!("#{{{s}}}")),
                };
            }
            t.nodes[cur].item = Some(value.clone());
        }
        t
    }

    fn child_or_insert(&mut self, parent: usize, name: &str) -> usize {
        let key = name.to_lowercase();
        if let Some(&c) = self.nodes[parent].children.get(&key) {
            return c;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.nodes[parent].children.insert(key, id);
        id
    }

    fn index_or_insert(&mut self, parent: usize, index: &str) -> usize {
        let key = index.to_lowercase();
        if let Some(&c) = self.nodes[parent].index_map.get(&key) {
            return c;
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            item: Some(index.to_string()),
            key: Some(index.to_string()),
            ..Node::default()
        });
        self.nodes[parent].index_map.insert(key, id);
        self.nodes[parent].indexed.push(id);
        id
    }
}
