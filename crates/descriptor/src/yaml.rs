//! A YAML tree that remembers where every node came from.
//!
//! `serde`-based YAML readers stop at the first error and forget positions once a value is
//! built. Zonal's readers must report every error with `line:column`, so descriptors are
//! first parsed into this small tree (built from `yaml-rust2`'s marked event stream), and
//! the readers walk it. Anchors and aliases are resolved; `<<` merge keys are applied;
//! duplicate keys are errors.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<Marker> for Span {
    fn from(m: Marker) -> Self {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Span { line: m.line(), column: m.col() + 1 }
    }
}

/// A scalar as written: its text and whether it was quoted (quoted scalars are always
/// strings; plain ones may be numbers, booleans or null).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub quoted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A YAML node and the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl Node {
    /// A short description of what the node is, for "found …" in error messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "nothing (null)".to_string(),
            NodeKind::Scalar(s) if s.quoted => format!("{:?}", s.text),
            NodeKind::Scalar(s) => {
                let t = &s.text;
                if t.chars().count() > 40 {
                    format!("{}…", t.chars().take(40).collect::<String>())
                } else {
                    t.clone()
                }
            }
            NodeKind::Seq(items) => {
                format!("a list of {} item{}", items.len(), if items.len() == 1 { "" } else { "s" })
            }
            NodeKind::Map(_) => "a mapping".to_string(),
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_scalar().is_some_and(|s| s.text == key)).map(|(_, v)| v)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

/// Parses every document of a YAML stream. On a syntax error, returns the documents that
/// were complete before it together with the error.
pub fn parse(text: &str) -> Result<Vec<Node>, (Vec<Node>, SyntaxError)> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    match parser.load(&mut builder, true) {
        Ok(()) => {
            if let Some(err) = builder.error {
                return Err((builder.documents, err));
            }
            Ok(builder.documents)
        }
        Err(e) => {
            let span = Span::from(*e.marker());
            let message = format!("invalid YAML: {}", e.info());
            Err((builder.documents, SyntaxError { span, message }))
        }
    }
}

enum Frame {
    Seq { span: Span, anchor: usize, items: Vec<Node> },
    Map { span: Span, anchor: usize, entries: Vec<(Node, Node)>, pending_key: Option<Node> },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    /// The first semantic problem met while building (duplicate key, unknown alias).
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, span: Span, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { span, message });
        }
    }

    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending_key, .. }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let duplicate = match &key.kind {
                        NodeKind::Scalar(k) => entries
                            .iter()
                            .find(|(existing, _)| {
                                existing.as_scalar().is_some_and(|e| e.text == k.text && k.text != "<<")
                            })
                            .map(|(existing, _)| (k.text.clone(), existing.span)),
                        _ => None,
                    };
                    match duplicate {
                        // The first value stays; the duplicate is reported, not used.
                        Some((name, first)) => self.fail(
                            key.span,
                            format!(
                                "duplicate key {name:?} (first defined at line {}); each key may appear once",
                                first.line
                            ),
                        ),
                        None => entries.push((key, node)),
                    }
                }
            },
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }
}

/// Applies `<<: *anchor` (or a list of anchors): keys of the merged mappings are added unless
/// the mapping already has them.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, (Span, String)> {
    if !entries.iter().any(|(k, _)| k.as_scalar().is_some_and(|s| s.text == "<<" && !s.quoted)) {
        return Ok(entries);
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in entries {
        if k.as_scalar().is_some_and(|s| s.text == "<<" && !s.quoted) {
            let sources: Vec<Node> = match v.kind {
                NodeKind::Seq(items) => items,
                _ => vec![v],
            };
            for src in sources {
                match src.kind {
                    NodeKind::Map(m) => merged.extend(m),
                    _ => {
                        return Err((
                            src.span,
                            "a merge key `<<` must name a mapping (e.g. `<<: *defaults`)".to_string(),
                        ))
                    }
                }
            }
        } else {
            own.push((k, v));
        }
    }
    for (k, v) in merged {
        let text = k.as_scalar().map(|s| s.text.clone());
        if !own.iter().any(|(o, _)| o.as_scalar().map(|s| &s.text) == text.as_ref()) {
            own.push((k, v));
        }
    }
    Ok(own)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let span = Span::from(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let is_null_tag = tag.as_ref().is_some_and(|t| t.suffix == "null");
                let node = if !quoted
                    && (text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
                    || is_null_tag
                {
                    Node { kind: NodeKind::Null, span }
                } else {
                    Node { kind: NodeKind::Scalar(Scalar { text, quoted }), span }
                };
                self.remember(anchor, &node);
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { span, anchor, items: Vec::new() }),
            Event::SequenceEnd => {
                if let Some(Frame::Seq { span, anchor, items }) = self.stack.pop() {
                    let node = Node { kind: NodeKind::Seq(items), span };
                    self.remember(anchor, &node);
                    self.push_value(node);
                }
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map { span, anchor, entries: Vec::new(), pending_key: None })
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { span, anchor, entries, .. }) = self.stack.pop() {
                    let entries = match apply_merge_keys(entries) {
                        Ok(e) => e,
                        Err((at, msg)) => {
                            self.fail(at, msg);
                            Vec::new()
                        }
                    };
                    // A block mapping's start event is reported after its first key; point at
                    // the key instead, where the user sees the mapping begin.
                    let span = entries.first().map_or(span, |(k, _)| k.span.min(span));
                    let node = Node { kind: NodeKind::Map(entries), span };
                    self.remember(anchor, &node);
                    self.push_value(node);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_value(node),
                None => {
                    self.fail(span, "alias to an unknown anchor".to_string());
                    self.push_value(Node { kind: NodeKind::Null, span });
                }
            },
            Event::DocumentStart | Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_and_documents() {
        let docs = parse("a: 1\nb:\n  - x\n  - \"y\"\n---\nc: ~\n").unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].get("b").unwrap();
        assert_eq!(b.as_seq().unwrap()[1].span, Span { line: 4, column: 5 });
        assert!(b.as_seq().unwrap()[1].as_scalar().unwrap().quoted);
        assert_eq!(docs[0].get("a").unwrap().span, Span { line: 1, column: 4 });
        assert!(docs[1].get("c").unwrap().is_null());
    }

    #[test]
    fn resolves_aliases_and_merge_keys() {
        let docs = parse("base: &b {cpu: 2, memory: 4Gi}\nhost:\n  <<: *b\n  cpu: 4\n").unwrap();
        let host = docs[0].get("host").unwrap();
        assert_eq!(host.get("cpu").unwrap().as_scalar().unwrap().text, "4");
        assert_eq!(host.get("memory").unwrap().as_scalar().unwrap().text, "4Gi");
    }

    #[test]
    fn rejects_duplicate_keys_and_bad_syntax() {
        let (_, err) = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.span.line, 2);
        assert!(err.message.contains("duplicate key"));
        let (_, err) = parse("a: [1, 2\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"));
    }
}
