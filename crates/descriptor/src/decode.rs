//! Walking a [`yaml::Node`] tree into model values while collecting every error.
//!
//! Each decoding helper returns `Option<T>`: `None` means "an error was recorded, carry on".
//! The readers therefore visit every field of every document and report all problems in one
//! pass. Every decoded value's position is remembered by field path, so checks that run
//! later on the model (cross-references) can still point at `file:line:column`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use zonal_model::units::UnitError;
use zonal_model::FieldPath;

use crate::yaml::{Node, NodeKind, Span};

/// One problem in an input file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub span: Option<Span>,
    pub path: Option<FieldPath>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(s) = self.span {
            write!(f, ":{}:{}", s.line, s.column)?;
        }
        if let Some(p) = self.path.as_ref().filter(|p| !p.is_root()) {
            write!(f, ": {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Positions of the fields of one document, by path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanIndex {
    spans: BTreeMap<FieldPath, Span>,
}

impl SpanIndex {
    pub fn insert(&mut self, path: FieldPath, span: Span) {
        self.spans.entry(path).or_insert(span);
    }
    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn locate(&self, path: &FieldPath) -> Option<Span> {
        let mut p = path.clone();
        loop {
            if let Some(s) = self.spans.get(&p) {
                return Some(*s);
            }
            if p.is_root() {
                return None;
            }
            p = p.parent();
        }
    }
}

/// Decoding state for one document.
pub struct Cx<'f> {
    pub file: &'f str,
    pub diagnostics: Vec<Diagnostic>,
    pub spans: SpanIndex,
}

impl<'f> Cx<'f> {
    pub fn new(file: &'f str) -> Self {
        Cx { file, diagnostics: Vec::new(), spans: SpanIndex::default() }
    }

    pub fn error(&mut self, span: Span, path: &FieldPath, message: impl Into<String>) {
        use crate::limits::MAX_DIAGNOSTICS;
        if self.diagnostics.len() > MAX_DIAGNOSTICS {
            return;
        }
        if self.diagnostics.len() == MAX_DIAGNOSTICS {
            self.diagnostics.push(Diagnostic {
                file: self.file.to_string(),
                span: Some(span),
                path: None,
                message: format!(
                    "more than {MAX_DIAGNOSTICS} errors in this document (MAX_DIAGNOSTICS); the rest are not reported"
                ),
            });
            return;
        }
        self.diagnostics.push(Diagnostic {
            file: self.file.to_string(),
            span: Some(span),
            path: Some(path.clone()),
            message: message.into(),
        });
    }

    fn seen(&mut self, node: &Node, path: &FieldPath) {
        self.spans.insert(path.clone(), node.span);
    }

    /// Opens a mapping for field-by-field reading.
    pub fn fields<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<Fields<'n>> {
        self.seen(node, path);
        match &node.kind {
            NodeKind::Map(entries) => {
                let mut list = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    match k.as_scalar() {
                        Some(s) => list.push((s.text.as_str(), k.span, v)),
                        None => self.error(k.span, path, format!("expected a plain key, found {}", k.describe())),
                    }
                }
                Some(Fields {
                    node,
                    path: path.clone(),
                    used: vec![false; list.len()],
                    entries: list,
                    asked: Vec::new(),
                })
            }
            _ => {
                self.error(node.span, path, format!("expected a mapping of fields, found {}", node.describe()));
                None
            }
        }
    }

    /// A text value (any scalar).
    pub fn string(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        self.seen(node, path);
        match &node.kind {
            NodeKind::Scalar(s) => Some(s.text.clone()),
            _ => {
                self.error(node.span, path, format!("expected a string, found {}", node.describe()));
                None
            }
        }
    }

    /// A name: a lower-case DNS label (`zonal_model::names`; names appear in REST paths, file
    /// names, environment variables and DNS).
    pub fn name(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        let text = self.string(node, path)?;
        match zonal_model::names::name_problem(&text) {
            None => Some(text),
            Some(problem) => {
                self.error(node.span, path, problem);
                None
            }
        }
    }

    /// A free label (a tier, an architecture): 1–128 characters, no `/`, no control
    /// characters, no leading or trailing spaces.
    pub fn label(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        let text = self.string(node, path)?;
        match zonal_model::names::label_problem(&text) {
            None => Some(text),
            Some(problem) => {
                self.error(node.span, path, problem);
                None
            }
        }
    }

    /// An integer of at least `min`.
    pub fn uint(&mut self, node: &Node, path: &FieldPath, min: u64) -> Option<u64> {
        self.seen(node, path);
        let what = match min {
            0 => "a non-negative integer".to_string(),
            1 => "a positive integer".to_string(),
            m => format!("an integer of at least {m}"),
        };
        let parsed = node.as_scalar().and_then(|s| s.text.trim().parse::<u64>().ok());
        match parsed {
            Some(v) if v >= min => Some(v),
            _ => {
                self.error(node.span, path, format!("expected {what}, found {}", node.describe()));
                None
            }
        }
    }

    pub fn u32(&mut self, node: &Node, path: &FieldPath, min: u32) -> Option<u32> {
        let v = self.uint(node, path, u64::from(min))?;
        match u32::try_from(v) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(node.span, path, format!("expected an integer below {}, found {v}", u32::MAX));
                None
            }
        }
    }

    /// An integer between `min` and `max` (both included): the documented maximum of a count
    /// (`zonal_model::limits`).
    pub fn u32_within(&mut self, node: &Node, path: &FieldPath, min: u32, max: u32) -> Option<u32> {
        self.seen(node, path);
        let parsed = node.as_scalar().and_then(|s| s.text.trim().parse::<u64>().ok());
        match parsed {
            Some(v) if v >= u64::from(min) && v <= u64::from(max) => Some(v as u32),
            _ => {
                self.error(
                    node.span,
                    path,
                    format!("expected an integer between {min} and {max}, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// A finite number within `range`.
    pub fn number(&mut self, node: &Node, path: &FieldPath, range: std::ops::RangeInclusive<f64>) -> Option<f64> {
        self.seen(node, path);
        let parsed = node.as_scalar().and_then(|s| s.text.trim().parse::<f64>().ok()).filter(|v| v.is_finite());
        match parsed {
            Some(v) if range.contains(&v) => Some(v),
            _ => {
                let what = match (range.start().is_finite(), range.end().is_finite()) {
                    (true, true) if *range.start() == f64::MIN_POSITIVE => {
                        format!("a positive number of at most {}", range.end())
                    }
                    (true, true) => format!("a number between {} and {}", range.start(), range.end()),
                    (true, false) => format!("a number of at least {}", range.start()),
                    _ => "a number".to_string(),
                };
                self.error(node.span, path, format!("expected {what}, found {}", node.describe()));
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &FieldPath) -> Option<bool> {
        self.seen(node, path);
        match node.as_scalar().filter(|s| !s.quoted).map(|s| s.text.as_str()) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => {
                self.error(node.span, path, format!("expected true or false, found {}", node.describe()));
                None
            }
        }
    }

    /// A quantity with a unit, parsed by the unit type's strict parser.
    pub fn quantity<T: FromStr<Err = UnitError>>(&mut self, node: &Node, path: &FieldPath) -> Option<T> {
        self.seen(node, path);
        let Some(scalar) = node.as_scalar() else {
            let expected = "".parse::<T>().err().map(|e| e.expected).unwrap_or("a quantity");
            self.error(node.span, path, format!("expected {expected}, found {}", node.describe()));
            return None;
        };
        match scalar.text.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(node.span, path, format!("expected {}, found {}", e.expected, node.describe()));
                None
            }
        }
    }

    /// A list, each item decoded by `item`. A missing list is the caller's business.
    pub fn list<T>(
        &mut self,
        node: &Node,
        path: &FieldPath,
        mut item: impl FnMut(&mut Self, &Node, &FieldPath) -> Option<T>,
    ) -> Vec<T> {
        self.seen(node, path);
        match &node.kind {
            NodeKind::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, n)| item(self, n, &path.index(i))).collect()
            }
            NodeKind::Null => Vec::new(),
            _ => {
                self.error(node.span, path, format!("expected a list, found {}", node.describe()));
                Vec::new()
            }
        }
    }

    /// A list of names.
    pub fn names(&mut self, node: &Node, path: &FieldPath) -> Vec<String> {
        self.list(node, path, |cx, n, p| cx.name(n, p))
    }

    /// A mapping of keys to scalar values (labels, features, environment).
    pub fn string_map(&mut self, node: &Node, path: &FieldPath) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if node.is_null() {
            return out;
        }
        if let Some(mut f) = self.fields(node, path) {
            for (key, _, value) in f.entries.clone() {
                let p = path.key(key);
                if let Some(v) = self.string(value, &p) {
                    out.insert(key.to_string(), v);
                }
            }
            f.used.iter_mut().for_each(|u| *u = true);
        }
        out
    }
}

/// The fields of one mapping being read. Keys are taken one by one; `finish` reports the keys
/// nobody asked for, with a suggestion when one is close to a known key.
pub struct Fields<'n> {
    pub node: &'n Node,
    pub path: FieldPath,
    pub entries: Vec<(&'n str, Span, &'n Node)>,
    pub used: Vec<bool>,
    asked: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// The value of `key` if present (a `null` value counts as absent).
    pub fn optional(&mut self, key: &'static str) -> Option<(&'n Node, FieldPath)> {
        self.asked.push(key);
        let i = self.entries.iter().position(|(k, _, _)| *k == key)?;
        self.used[i] = true;
        let node = self.entries[i].2;
        (!node.is_null()).then(|| (node, self.path.key(key)))
    }

    /// The value of `key`, or an error at the mapping saying it is missing.
    pub fn required(&mut self, cx: &mut Cx<'_>, key: &'static str, what: &str) -> Option<(&'n Node, FieldPath)> {
        let found = self.optional(key);
        if found.is_none() {
            let at = self.entries.iter().find(|(k, _, _)| *k == key).map_or(self.node.span, |(_, _, n)| n.span);
            cx.error(at, &self.path.key(key), format!("missing required field `{key}`: expected {what}"));
        }
        found
    }

    /// Whether the mapping has `key` at all (even null).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| *k == key)
    }

    /// Reports every key that was never asked for.
    pub fn finish(self, cx: &mut Cx<'_>) {
        for (i, (key, span, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let mut known: Vec<&str> = self.asked.clone();
            known.sort_unstable();
            known.dedup();
            let suggestion = closest(key, &known).map(|k| format!("did you mean `{k}`? ")).unwrap_or_default();
            cx.error(
                *span,
                &self.path.key(*key),
                format!("unknown field `{key}`; {suggestion}expected one of: {}", known.join(", ")),
            );
        }
    }
}

/// The known word closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&word, &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= 1.max(k.len() / 3) && *d < word.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    #[test]
    fn suggests_close_keys() {
        assert_eq!(closest("slot", &["slots", "scaling", "name"]), Some("slots"));
        assert_eq!(closest("per_instanse", &["per_instance", "min_free"]), Some("per_instance"));
        assert_eq!(closest("xyz", &["slots", "name"]), None);
    }

    #[test]
    fn collects_every_error() {
        let docs = yaml::parse("a: -3\nb: fast\nc: 12\nd: zz\n").unwrap();
        let mut cx = Cx::new("t.yaml");
        let root = FieldPath::root();
        let mut f = cx.fields(&docs[0], &root).unwrap();
        let (a, pa) = f.required(&mut cx, "a", "an integer").unwrap();
        assert!(cx.u32(a, &pa, 1).is_none());
        let (b, pb) = f.required(&mut cx, "b", "a duration").unwrap();
        assert!(cx.quantity::<zonal_model::Duration>(b, &pb).is_none());
        assert!(f.required(&mut cx, "e", "an e").is_none());
        let _ = f.optional("c");
        f.finish(&mut cx);
        let text: Vec<String> = cx.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "t.yaml:1:4: a: expected a positive integer, found -3",
                "t.yaml:2:4: b: expected a duration with a unit: ns, us, ms, s, m or h (e.g. 20ms, 1.5s, 250us), found fast",
                "t.yaml:1:1: e: missing required field `e`: expected an e",
                "t.yaml:4:1: d: unknown field `d`; expected one of: a, b, c, e",
            ]
        );
    }
}
