//! Manifests at the API boundary: a manifest is read and fully validated with
//! `zonal-descriptor` before anything is stored; an invalid one yields every diagnostic.

use zonal_model::Service;

use crate::error::ApiError;

/// Parses a manifest and returns the one service it defines, or every diagnostic.
pub fn parse_manifest(file: &str, manifest: &str) -> Result<Service, ApiError> {
    let mut loaded = zonal_descriptor::read_yaml_str(file, manifest);
    if loaded.is_valid() {
        loaded.cross_check();
    }
    if !loaded.is_valid() {
        let diags: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
        return Err(ApiError::new(
            400,
            "invalid_manifest",
            format!("the manifest has {} error(s); nothing was registered", diags.len()),
        )
        .with_diagnostics(diags));
    }
    let services: Vec<Service> = loaded.bundle.services().cloned().collect();
    match services.len() {
        1 => Ok(services.into_iter().next().unwrap_or_default()),
        0 => Err(ApiError::new(
            400,
            "invalid_manifest",
            "the manifest defines no service; expected exactly one `kind: Service` document (or one TOSCA service template)",
        )),
        n => Err(ApiError::new(
            400,
            "invalid_manifest",
            format!("the manifest defines {n} services; expected exactly one (register them one by one)"),
        )),
    }
}
