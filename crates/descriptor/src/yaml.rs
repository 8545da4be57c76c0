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

/// The largest YAML input read, in bytes (8 MiB). The biggest descriptor the tests read,
/// WonderNetwork's 246 servers and 30,107 measured latencies converted to native YAML, is
/// 1.6 MB; the repository's example descriptors are under 4 KiB.
pub const MAX_YAML_BYTES: usize = 8 << 20;
/// The deepest nesting of mappings and sequences (aliases expanded). The repository's native
/// examples nest at most 6 levels, its TOSCA examples 10.
pub const MAX_YAML_DEPTH: usize = 64;
/// The most nodes (scalars, mappings, sequences, aliases expanded) one input may build.
pub const MAX_YAML_NODES: usize = 1_000_000;
/// The most nodes that aliases may add to an input, all aliases together: an alias is
/// refused, before it is copied, once its expansion would pass this budget. This is what
/// stops a "billion laughs" file (a few lines of nested aliases expanding to billions of
/// nodes).
pub const MAX_YAML_ALIAS_NODES: usize = 20_000;
/// The most aliases (`*name`) one input may use.
pub const MAX_YAML_ALIASES: usize = 2_000;

/// Why `len` bytes of YAML are too many to read, or `None`.
pub fn size_problem(len: usize) -> Option<String> {
    (len > MAX_YAML_BYTES).then(|| {
        format!(
            "the input is {len} bytes; YAML descriptors are limited to {MAX_YAML_BYTES} bytes ({} MiB, MAX_YAML_BYTES)",
            MAX_YAML_BYTES >> 20
        )
    })
}

/// Parses every document of a YAML stream. On a syntax error, or when a limit is passed
/// ([`MAX_YAML_BYTES`], [`MAX_YAML_DEPTH`], [`MAX_YAML_NODES`], [`MAX_YAML_ALIAS_NODES`],
/// [`MAX_YAML_ALIASES`]), returns the documents that were complete before it together with
/// the error; reading stops there (nothing past a passed limit is built).
pub fn parse(text: &str) -> Result<Vec<Node>, (Vec<Node>, SyntaxError)> {
    if let Some(message) = size_problem(text.len()) {
        return Err((Vec::new(), SyntaxError { span: Span { line: 1, column: 1 }, message }));
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Events are pulled one by one (not `Parser::load`, which recurses once per nesting
    // level) so that reading stops at the first error or passed limit.
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => {
                builder.on_event(ev, mark);
                if builder.error.is_some() && builder.stop {
                    break;
                }
            }
            Err(e) => {
                let span = Span::from(*e.marker());
                let message = format!("invalid YAML: {}", e.info());
                return Err((builder.documents, SyntaxError { span, message }));
            }
        }
    }
    match builder.error {
        Some(err) => Err((builder.documents, err)),
        None => Ok(builder.documents),
    }
}

/// An open collection, with the number of nodes and the height built inside it so far.
enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
        nodes: usize,
        height: usize,
    },
    Map {
        span: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        /// Where each scalar key was first defined (duplicates are found in constant time).
        keys: HashMap<String, Span>,
        nodes: usize,
        height: usize,
    },
}

/// An anchored node, with its size (nodes) and height (levels), known before it is copied.
struct Anchored {
    node: Node,
    nodes: usize,
    height: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    documents: Vec<Node>,
    /// The first semantic problem met while building (duplicate key, unknown alias, a limit).
    error: Option<SyntaxError>,
    /// Set when the error is a passed limit: reading stops.
    stop: bool,
    /// Nodes built so far, aliases expanded.
    nodes: usize,
    /// Nodes added by aliases so far.
    alias_nodes: usize,
    /// Aliases used so far.
    aliases: usize,
}

impl Builder {
    fn fail(&mut self, span: Span, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { span, message });
        }
    }

    /// Records a passed limit and stops reading (the first error wins, but any limit stops).
    fn limit(&mut self, span: Span, message: String) {
        self.fail(span, message);
        self.stop = true;
    }

    /// Counts `nodes` more nodes; false (and reading stops) past [`MAX_YAML_NODES`].
    fn count(&mut self, span: Span, nodes: usize) -> bool {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_YAML_NODES {
            self.limit(
                span,
                format!("the input has more than {MAX_YAML_NODES} YAML nodes (MAX_YAML_NODES, aliases expanded); split it into several files"),
            );
            return false;
        }
        true
    }

    /// Opens a collection; false (and reading stops) past [`MAX_YAML_DEPTH`].
    fn open(&mut self, span: Span) -> bool {
        if self.stack.len() >= MAX_YAML_DEPTH {
            self.limit(span, format!("nesting deeper than {MAX_YAML_DEPTH} levels (MAX_YAML_DEPTH)"));
            return false;
        }
        self.count(span, 1)
    }

    fn push_value(&mut self, node: Node, nodes: usize, height: usize) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, nodes: n, height: h, .. }) => {
                *n += nodes;
                *h = (*h).max(height + 1);
                items.push(node)
            }
            Some(Frame::Map { entries, pending_key, keys, nodes: n, height: h, .. }) => {
                *n += nodes;
                *h = (*h).max(height + 1);
                match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        let duplicate = match &key.kind {
                            NodeKind::Scalar(k) if k.text != "<<" => match keys.get(&k.text) {
                                Some(first) => Some((k.text.clone(), *first)),
                                None => {
                                    keys.insert(k.text.clone(), key.span);
                                    None
                                }
                            },
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
                }
            }
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node, nodes: usize, height: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, Anchored { node: node.clone(), nodes, height });
        }
    }

    /// `*name`: the anchored node is copied only when its size and height fit the limits.
    fn alias(&mut self, id: usize, span: Span) {
        self.aliases += 1;
        if self.aliases > MAX_YAML_ALIASES {
            return self.limit(span, format!("more than {MAX_YAML_ALIASES} aliases (MAX_YAML_ALIASES)"));
        }
        let Some(a) = self.anchors.get(&id) else {
            self.fail(span, "alias to an unknown anchor".to_string());
            return self.push_value(Node { kind: NodeKind::Null, span }, 1, 0);
        };
        let (nodes, height) = (a.nodes, a.height);
        if self.alias_nodes.saturating_add(nodes) > MAX_YAML_ALIAS_NODES {
            return self.limit(
                span,
                format!(
                    "this alias would expand to {nodes} more nodes, past the limit of {MAX_YAML_ALIAS_NODES} nodes added by aliases (MAX_YAML_ALIAS_NODES; {} already added); write the values out or use fewer aliases",
                    self.alias_nodes
                ),
            );
        }
        if self.stack.len() + height > MAX_YAML_DEPTH {
            return self
                .limit(span, format!("this alias would nest deeper than {MAX_YAML_DEPTH} levels (MAX_YAML_DEPTH)"));
        }
        let node = a.node.clone();
        self.alias_nodes += nodes;
        if !self.count(span, nodes) {
            return;
        }
        self.push_value(node, nodes, height);
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
    let mut present: std::collections::HashSet<String> =
        own.iter().filter_map(|(o, _)| o.as_scalar().map(|s| s.text.clone())).collect();
    for (k, v) in merged {
        match k.as_scalar().map(|s| s.text.clone()) {
            Some(text) => {
                if present.insert(text) {
                    own.push((k, v));
                }
            }
            None => own.push((k, v)),
        }
    }
    Ok(own)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let span = Span::from(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(span, 1) {
                    return;
                }
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
                self.remember(anchor, &node, 1, 0);
                self.push_value(node, 1, 0);
            }
            Event::SequenceStart(anchor, _) => {
                if self.open(span) {
                    self.stack.push(Frame::Seq { span, anchor, items: Vec::new(), nodes: 1, height: 0 })
                }
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { span, anchor, items, nodes, height }) = self.stack.pop() {
                    let node = Node { kind: NodeKind::Seq(items), span };
                    self.remember(anchor, &node, nodes, height);
                    self.push_value(node, nodes, height);
                }
            }
            Event::MappingStart(anchor, _) => {
                if self.open(span) {
                    self.stack.push(Frame::Map {
                        span,
                        anchor,
                        entries: Vec::new(),
                        pending_key: None,
                        keys: HashMap::new(),
                        nodes: 1,
                        height: 0,
                    })
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { span, anchor, entries, nodes, height, .. }) = self.stack.pop() {
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
                    self.remember(anchor, &node, nodes, height);
                    self.push_value(node, nodes, height);
                }
            }
            Event::Alias(id) => self.alias(id, span),
            // Anchors belong to their document.
            Event::DocumentStart => self.anchors.clear(),
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
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

    /// "Billion laughs": nine levels of ten aliases would build 10^9 nodes. The alias that
    /// would pass the budget is refused before it is copied, at its line and column.
    #[test]
    fn an_alias_bomb_is_refused_before_it_is_expanded() {
        let mut text = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
        for i in 1..10 {
            let refs = vec![format!("*l{}", i - 1); 10].join(", ");
            text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let (_, err) = parse(&text).expect_err("refused");
        let took = started.elapsed();
        eprintln!("alias bomb ({} bytes) refused in {took:?}", text.len());
        // A generous sanity bound (the figure is measured, not asserted: docs/reliability.md).
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        assert!(err.message.contains("MAX_YAML_ALIAS_NODES"), "{}", err.message);
        assert_eq!(err.span.line, 5, "{err:?}");
    }

    #[test]
    fn every_limit_is_named_with_its_position() {
        let deep = format!("{}1{}", "[".repeat(MAX_YAML_DEPTH + 1), "]".repeat(MAX_YAML_DEPTH + 1));
        let (_, e) = parse(&deep).expect_err("too deep");
        assert!(
            e.message.contains("MAX_YAML_DEPTH") && e.span == Span { line: 1, column: MAX_YAML_DEPTH + 1 },
            "{e:?}"
        );
        // Block nesting too (the parser's own `load` would recurse once per level).
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&format!("{}k{i}:\n", "  ".repeat(i)));
        }
        let (_, e) = parse(&block).expect_err("too deep");
        assert!(e.message.contains("MAX_YAML_DEPTH"), "{e:?}");
        assert_eq!(parse(&"[".repeat(MAX_YAML_DEPTH)).map_err(|(_, e)| e.message.contains("DEPTH")), Err(false));

        let many = format!("[{}]", vec!["1"; MAX_YAML_NODES].join(","));
        let (_, e) = parse(&many).expect_err("too many nodes");
        assert!(e.message.contains("MAX_YAML_NODES"), "{e:?}");

        let aliases = format!("a: &a 1\nb: [{}]\n", vec!["*a"; MAX_YAML_ALIASES + 1].join(", "));
        let (_, e) = parse(&aliases).expect_err("too many aliases");
        assert!(e.message.contains("MAX_YAML_ALIASES") && e.span.line == 2, "{e:?}");

        // An alias may not nest a deep anchor deeper than the limit either.
        let half = MAX_YAML_DEPTH / 2 + 2;
        let nested =
            format!("a: &a {}1{}\nb: {}*a{}\n", "[".repeat(half), "]".repeat(half), "[".repeat(half), "]".repeat(half));
        let (_, e) = parse(&nested).expect_err("alias too deep");
        assert!(e.message.contains("MAX_YAML_DEPTH") && e.span.line == 2, "{e:?}");

        let big = " ".repeat(MAX_YAML_BYTES + 1);
        let (_, e) = parse(&big).expect_err("too big");
        assert!(e.message.contains("MAX_YAML_BYTES") && e.span == Span { line: 1, column: 1 }, "{e:?}");
    }

    #[test]
    fn many_keys_are_checked_for_duplicates_in_linear_time() {
        let text: String = (0..100_000).map(|i| format!("k{i}: {i}\n")).collect();
        let started = std::time::Instant::now();
        assert_eq!(parse(&text).map(|d| d[0].as_map().map(<[_]>::len)), Ok(Some(100_000)));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn anchors_belong_to_their_document() {
        let (_, e) = parse("a: &x 1\n---\nb: *x\n").expect_err("unknown in the second document");
        assert!(e.message.contains("unknown anchor") || e.message.starts_with("invalid YAML"), "{e:?}");
        assert_eq!(e.span.line, 3, "{e:?}");
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
