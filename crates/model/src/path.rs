//! Field paths (`components[1].slots.per_instance`) and the errors that point at them.
//!
//! The model knows nothing about files. A validation error names the document (by its index
//! in the [`crate::Bundle`]) and the path of the field inside it; the descriptor layer, which
//! kept the source position of every field, turns that into `file:line:column`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from a document's root to one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.into()));
        p
    }
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
    /// The path without its last segment (the root stays the root).
    pub fn parent(&self) -> FieldPath {
        let mut p = self.clone();
        p.0.pop();
        p
    }
    pub fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }
    pub fn pop(&mut self) {
        self.0.pop();
    }
}

/// Builds a path from `"a.b[2].c"`-style text; used by tests and by callers that name a
/// field literally.
impl From<&str> for FieldPath {
    fn from(text: &str) -> Self {
        let mut path = FieldPath::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                if open > 0 {
                    path.0.push(Segment::Key(rest[..open].to_string()));
                }
                rest = &rest[open..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let close = stripped.find(']').unwrap_or(stripped.len());
                    if let Ok(i) = stripped[..close].parse() {
                        path.0.push(Segment::Index(i));
                    }
                    rest = stripped.get(close + 1..).unwrap_or("");
                }
            } else {
                path.0.push(Segment::Key(rest.to_string()));
            }
        }
        path
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One problem found in a bundle of documents: which document, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelError {
    /// Index of the document in [`crate::Bundle::documents`].
    pub document: usize,
    pub path: FieldPath,
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}: {}: {}", self.document + 1, self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_and_parse() {
        let p = FieldPath::root().key("components").index(1).key("slots").key("per_instance");
        assert_eq!(p.to_string(), "components[1].slots.per_instance");
        assert_eq!(FieldPath::from("components[1].slots.per_instance"), p);
        assert_eq!(FieldPath::from("a[0][2].b"), FieldPath::root().key("a").index(0).index(2).key("b"));
    }
}
