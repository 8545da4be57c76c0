//! Reading files of any supported format into one validated [`Bundle`].
//!
//! The format is chosen by file name and content: native YAML (`kind:` documents), TOSCA
//! YAML (`tosca_definitions_version:`), CSAR archives (`.csar`, `.zip`), Topology Zoo
//! GraphML (`.graphml`) and the bundled datasets' CSV/text files. Every document is checked
//! field by field while it is read, then the whole bundle is cross-checked; every problem
//! becomes a [`Diagnostic`] with file, line, column and field path. A bundle with any
//! diagnostic must not be used ([`Loaded::is_valid`]).

use std::path::Path;

use zonal_model::{Bundle, Document};

use crate::datasets::DatasetOptions;
use crate::decode::{Cx, Diagnostic, SpanIndex};
use crate::{native, tosca, yaml};

/// Where one document came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Source {
    pub file: String,
    pub spans: SpanIndex,
}

/// Documents read from one or more inputs, their sources, and every problem found.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub bundle: Bundle,
    /// One per document of `bundle`, in the same order.
    pub sources: Vec<Source>,
    pub diagnostics: Vec<Diagnostic>,
    /// What importers did besides plain conversion (merged links, imputed positions, …).
    pub notes: Vec<String>,
}

impl Loaded {
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }

    fn push(&mut self, doc: Document, source: Source) {
        self.bundle.documents.push(doc);
        self.sources.push(source);
    }

    /// Adds the documents read from another input.
    pub fn extend(&mut self, other: Loaded) {
        self.bundle.documents.extend(other.bundle.documents);
        self.sources.extend(other.sources);
        self.diagnostics.extend(other.diagnostics);
        self.notes.extend(other.notes);
    }

    /// Runs the cross-document checks and turns their findings into located diagnostics.
    pub fn cross_check(&mut self) {
        for e in self.bundle.validate() {
            let source = self.sources.get(e.document);
            self.diagnostics.push(Diagnostic {
                file: source.map_or_else(|| format!("document {}", e.document + 1), |s| s.file.clone()),
                span: source.and_then(|s| s.spans.locate(&e.path)),
                path: Some(e.path),
                message: e.message,
            });
        }
        self.diagnostics.sort();
        self.diagnostics.dedup();
    }
}

/// Reads YAML text (native or TOSCA) named `file`. Does not cross-check.
pub fn read_yaml_str(file: &str, text: &str) -> Loaded {
    let mut loaded = Loaded::default();
    let docs = match yaml::parse(text) {
        Ok(docs) => docs,
        Err((docs, err)) => {
            loaded.diagnostics.push(Diagnostic {
                file: file.to_string(),
                span: Some(err.span),
                path: None,
                message: err.message,
            });
            docs
        }
    };
    if docs.is_empty() && loaded.diagnostics.is_empty() {
        loaded.diagnostics.push(Diagnostic {
            file: file.to_string(),
            span: Some(yaml::Span { line: 1, column: 1 }),
            path: None,
            message: "no documents found; expected at least one `kind: Infrastructure | Service | Demand` document"
                .to_string(),
        });
    }
    for node in &docs {
        let mut cx = Cx::new(file);
        let doc = if node.get("tosca_definitions_version").is_some() {
            tosca::read_template(&mut cx, node).map(|(docs, notes)| {
                loaded.notes.extend(notes);
                docs
            })
        } else {
            native::read_document(&mut cx, node).map(|d| vec![d])
        };
        for d in doc.unwrap_or_default() {
            loaded.push(d, Source { file: file.to_string(), spans: cx.spans.clone() });
        }
        loaded.diagnostics.extend(cx.diagnostics);
    }
    loaded
}

/// Reads one input file of any supported format with default dataset options. Does not
/// cross-check.
pub fn read_path(path: &Path) -> Loaded {
    read_path_with(path, &DatasetOptions::default())
}

/// Reads one input file of any supported format. Does not cross-check.
pub fn read_path_with(path: &Path, options: &DatasetOptions) -> Loaded {
    let file = path.display().to_string();
    let fail = |message: String| Loaded {
        diagnostics: vec![Diagnostic { file: file.clone(), span: None, path: None, message }],
        ..Default::default()
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    if ext == "csar" || ext == "zip" {
        return match crate::limits::read_limited(path, crate::limits::MAX_CSAR_BYTES, "CSAR archives") {
            Ok(bytes) => tosca::read_csar(&file, &bytes),
            Err(e) => fail(e),
        };
    }
    let is_yaml = matches!(ext.as_str(), "yaml" | "yml");
    let (limit, what) = if is_yaml {
        (crate::limits::MAX_YAML_BYTES as u64, "YAML descriptors (MAX_YAML_BYTES)")
    } else {
        (crate::limits::MAX_DATASET_BYTES, "dataset files (MAX_DATASET_BYTES)")
    };
    let text = match crate::limits::read_text_limited(path, limit, what) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    match ext.as_str() {
        "yaml" | "yml" => read_yaml_str(&file, &text),
        _ => match crate::datasets::read_dataset(path, &name, &text, options) {
            Some(loaded) => loaded,
            None => fail(format!(
                "unrecognised input {name:?}; expected a .yaml/.yml descriptor (native or TOSCA), a .csar/.zip archive, a .graphml topology, or one of the dataset files ({})",
                crate::datasets::KNOWN_DATASETS
            )),
        },
    }
}

/// Reads every input and cross-checks them together (default dataset options).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Loaded {
    load_paths_with(paths, &DatasetOptions::default())
}

/// Reads every input with the given dataset options and cross-checks them together.
pub fn load_paths_with<P: AsRef<Path>>(paths: &[P], options: &DatasetOptions) -> Loaded {
    let mut loaded = Loaded::default();
    for p in paths {
        loaded.extend(read_path_with(p.as_ref(), options));
    }
    if loaded.diagnostics.is_empty() {
        loaded.cross_check();
    }
    loaded
}
