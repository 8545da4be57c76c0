//! Service manifests as the daemons receive them: one document (native YAML or TOSCA) that
//! must define exactly one service, read and fully validated (cross-checks included) before
//! anything is stored. An invalid manifest yields every diagnostic, not the first.
//!
//! The daemons turn a [`ManifestError`] into their `400 invalid_manifest` answer (summary as
//! `detail`, each diagnostic in `diagnostics`); this module knows nothing of HTTP.

use std::fmt;

use zonal_model::Service;

use crate::decode::Diagnostic;
use crate::load::read_yaml_str;

/// Why a manifest was refused: a one-sentence summary and every diagnostic found.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    /// What is wrong as a whole (how many errors; or that the count of services is wrong).
    pub summary: String,
    /// Every problem, each with file, line, column and field path (empty when the manifest
    /// reads fine but defines no service, or several).
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestError {
    /// The diagnostics as `file:line:column: path: message` lines.
    pub fn diagnostic_lines(&self) -> Vec<String> {
        self.diagnostics.iter().map(|d| d.to_string()).collect()
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)?;
        for d in &self.diagnostics {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// Reads `text` (named `file` in diagnostics) and returns the one service it defines, or
/// every diagnostic. Nothing of an invalid manifest is returned.
pub fn parse_manifest(file: &str, text: &str) -> Result<Service, ManifestError> {
    let mut loaded = read_yaml_str(file, text);
    // Cross-document checks only once every document decoded (see `Loaded::cross_check`).
    if loaded.is_valid() {
        loaded.cross_check();
    }
    if !loaded.is_valid() {
        return Err(ManifestError {
            summary: format!("the manifest has {} error(s); nothing was registered", loaded.diagnostics.len()),
            diagnostics: loaded.diagnostics,
        });
    }
    let mut services: Vec<Service> = loaded.bundle.services().cloned().collect();
    match services.len() {
        1 => Ok(services.swap_remove(0)),
        0 => Err(ManifestError {
            summary: "the manifest defines no service; expected exactly one `kind: Service` document (or one TOSCA service template)".into(),
            diagnostics: Vec::new(),
        }),
        n => Err(ManifestError {
            summary: format!("the manifest defines {n} services; expected exactly one (register them one by one)"),
            diagnostics: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_service_is_read_and_every_problem_is_reported() {
        let ok = "kind: Service\nname: web\ncomponents:\n  - name: web\n    run: zonal workload\n";
        assert_eq!(parse_manifest("m.yaml", ok).map(|s| s.name), Ok("web".to_string()));

        let bad = "kind: Service\nname: web\ncomponents:\n  - name: web\n    run: zonal workload\n    scaling: {min_instances: x}\n    colour: red\n";
        let e = parse_manifest("m.yaml", bad).expect_err("two errors");
        assert!(e.diagnostics.len() >= 2, "{e}");
        assert!(e.summary.contains(&format!("{} error(s)", e.diagnostics.len())), "{e}");
        assert!(e.diagnostic_lines().iter().all(|l| l.starts_with("m.yaml:")), "{:?}", e.diagnostic_lines());

        let none = "kind: Infrastructure\nname: i\nzones: []\n";
        let e = parse_manifest("m.yaml", none).expect_err("no service");
        assert!(e.summary.contains("defines no service") && e.diagnostics.is_empty(), "{e}");

        let two = format!("{ok}---\n{}", ok.replace("name: web\ncomp", "name: api\ncomp"));
        let e = parse_manifest("m.yaml", &two).expect_err("two services");
        assert!(e.summary.contains("defines 2 services"), "{e}");
    }
}
