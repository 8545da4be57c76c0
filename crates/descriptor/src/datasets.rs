//! Recognising dataset files by name and routing them to their importers.
//!
//! | file | importer | companions found automatically |
//! |---|---|---|
//! | `*.graphml` | Topology Zoo → zones and links | — |
//! | `wondernetwork-servers-<date>.csv` | WonderNetwork → zones and measured latencies | `wondernetwork-pings-<date>-grouped.csv` beside it |
//! | `dcNodes.csv`, `manydc.out` | FUSION geo-video → zones with prices | `ec2_price.out` beside it (zone CPU price = nearest EC2 location's) |
//! | `mooc.out` | FUSION geo-video → user regions with weights | — |
//! | `site-*.csv` | EUA → edge zones | — |
//! | `users-*.csv` | EUA → user regions | the `site-*.csv` in `../edge-servers/` (for attach zones) |

use std::path::{Path, PathBuf};

use zonal_model::{Document, Infrastructure};

use crate::decode::Diagnostic;
use crate::import::eua::{import_eua_sites, import_eua_users, EuaOptions};
use crate::import::geovideo::{
    import_dc_nodes, import_manydc, import_mooc, parse_price_table, GeoVideoOptions, MoocOptions,
};
use crate::import::graphml::{import_graphml, GraphmlOptions};
use crate::import::wondernetwork::import_wondernetwork;
use crate::import::{ImportError, ImportReport};
use crate::load::{Loaded, Source};

/// The dataset files `read_path` recognises, for error messages.
pub const KNOWN_DATASETS: &str = "*.graphml (Topology Zoo), dcNodes.csv / manydc.out / mooc.out (FUSION geo-video), wondernetwork-servers-*.csv (WonderNetwork, with its pings file beside it), site-*.csv / users-*.csv (EUA)";

/// Choices the importers need that the files do not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetOptions {
    pub graphml: GraphmlOptions,
    /// Demand entries for this service are created from user datasets (mooc, EUA users);
    /// without it they give regions only.
    pub service: Option<String>,
    /// mooc: slots per unit of weight.
    pub slots_per_weight: f64,
    /// EUA: one region per nearest site instead of one per user.
    pub cluster_users: bool,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions { graphml: GraphmlOptions::default(), service: None, slots_per_weight: 1.0, cluster_users: true }
    }
}

fn to_diagnostic(e: ImportError) -> Diagnostic {
    let span = e.line.map(|line| crate::yaml::Span { line, column: e.column.unwrap_or(1) });
    Diagnostic { file: e.file, span, path: None, message: e.message }
}

fn loaded_from(file: &str, result: Result<(Document, ImportReport), ImportError>) -> Loaded {
    let mut loaded = Loaded::default();
    match result {
        Ok((doc, report)) => {
            loaded.notes.extend(report.notes.into_iter().map(|n| format!("{file}: {n}")));
            loaded.bundle.documents.push(doc);
            loaded.sources.push(Source { file: file.to_string(), ..Default::default() });
        }
        Err(e) => loaded.diagnostics.push(to_diagnostic(e)),
    }
    loaded
}

fn read_companion(path: &Path) -> Result<(String, String), ImportError> {
    let file = path.display().to_string();
    crate::limits::read_text_limited(path, crate::limits::MAX_DATASET_BYTES, "dataset files (MAX_DATASET_BYTES)")
        .map(|t| (file.clone(), t))
        .map_err(|e| ImportError { file, line: None, column: None, message: format!("companion file: {e}") })
}

fn first_match(dir: &Path, prefix: &str, suffix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Reads a dataset file if its name is one Zonal knows; `None` otherwise.
pub fn read_dataset(path: &Path, name: &str, text: &str, options: &DatasetOptions) -> Option<Loaded> {
    let file = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new("."));
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let infra =
        |r: Result<(Infrastructure, ImportReport), ImportError>| r.map(|(i, rep)| (Document::Infrastructure(i), rep));
    let geo_options = || -> Result<GeoVideoOptions, ImportError> {
        let mut o = GeoVideoOptions::default();
        if let Some(p) = first_match(dir, "ec2_price", ".out") {
            let (pf, pt) = read_companion(&p)?;
            o.ec2_prices = Some(parse_price_table(&pt, &pf)?);
        }
        Ok(o)
    };
    let result = if ext == "graphml" {
        infra(import_graphml(text, &file, &options.graphml))
    } else if name.starts_with("wondernetwork-servers") && ext == "csv" {
        let date = name.trim_start_matches("wondernetwork-servers").trim_end_matches(".csv");
        match first_match(dir, &format!("wondernetwork-pings{date}"), ".csv") {
            Some(p) => read_companion(&p).and_then(|(pf, pt)| infra(import_wondernetwork(text, &file, &pt, &pf))),
            None => Err(ImportError {
                file: file.clone(),
                line: None,
                column: None,
                message: format!("expected the pings file wondernetwork-pings{date}*.csv beside the servers file"),
            }),
        }
    } else if name.starts_with("wondernetwork-pings") {
        Err(ImportError {
            file: file.clone(),
            line: None,
            column: None,
            message: "give the servers file (wondernetwork-servers-*.csv); the pings file beside it is read with it"
                .into(),
        })
    } else if name == "dcNodes.csv" {
        geo_options().and_then(|o| infra(import_dc_nodes(text, &file, &o)))
    } else if name == "manydc.out" {
        geo_options().and_then(|o| infra(import_manydc(text, &file, &o)))
    } else if name == "mooc.out" {
        let o = MoocOptions { service: options.service.clone(), slots_per_weight: options.slots_per_weight };
        import_mooc(text, &file, &o).map(|(d, r)| (Document::Demand(d), r))
    } else if name.starts_with("site-") && ext == "csv" {
        let o = EuaOptions::default();
        infra(import_eua_sites(text, &file, &o))
    } else if name.starts_with("users-") && ext == "csv" {
        let sites_dir = dir.join("../edge-servers");
        let sites = match first_match(&sites_dir, "site-", ".csv") {
            Some(p) => read_companion(&p).and_then(|(sf, st)| import_eua_sites(&st, &sf, &EuaOptions::default())),
            None => Err(ImportError {
                file: file.clone(),
                line: None,
                column: None,
                message: format!("expected the EUA sites file (site-*.csv) in {}", sites_dir.display()),
            }),
        };
        sites.and_then(|(sites, _)| {
            let o = EuaOptions {
                cluster_to_sites: options.cluster_users,
                service: options.service.clone(),
                ..Default::default()
            };
            import_eua_users(text, &file, &sites, &o).map(|(d, r)| (Document::Demand(d), r))
        })
    } else {
        return None;
    };
    Some(loaded_from(&file, result))
}
