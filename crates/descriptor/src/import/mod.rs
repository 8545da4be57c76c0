//! Importers for real-world datasets: each turns a file format into Zonal model documents and
//! reports what it had to merge, drop or guess.
//!
//! Every importer is a pure function of the file contents, the file name (used in errors and
//! to name the document) and, where choices exist, an options struct. It returns the model
//! documents and an [`ImportReport`], or the first [`ImportError`], located at file, line
//! and (where the format allows) column, saying what was expected. Nothing panics on bad
//! data.
//!
//! Conventions shared by all importers:
//!
//! * Malformed rows are errors. The only rows skipped (and counted in the report) are known
//!   junk: WonderNetwork ping rows naming server ids absent from the servers file, and
//!   WonderNetwork self-pings. Blank lines and `%` comment lines of the FUSION files are not
//!   data.
//! * Line numbers are 1-based; columns are 1-based character columns of the offending field
//!   (XML: of the offending element), omitted when they cannot be known exactly (a quoted
//!   CSV row, an option that names nothing in the file).
//! * Names are made unique deterministically: by appending the distinguishing attribute the
//!   module documents (GraphML id, server id, country code, ...), and as a last resort
//!   `-2`, `-3`, ... in file order.
//! * Documents are named after the file stem; centroids are spherical means; distances are
//!   great-circle (`Location::distance_km`).
//! * Tests that read the real datasets find them at `<workspace>/../shared/data` and fail,
//!   naming the missing file and saying how to get the data, when it is absent.
//!
//! | module | dataset | produces |
//! |---|---|---|
//! | [`graphml`] | Internet Topology Zoo GraphML | [`Infrastructure`](zonal_model::Infrastructure): zones (data centres and transit nodes) and links |
//! | [`wondernetwork`] | WonderNetwork servers + grouped pings | [`Infrastructure`](zonal_model::Infrastructure) with measured latencies; [`LatencyMatrix`] |
//! | [`geovideo`] | FUSION geo-video: `dcNodes.csv`, `manydc.out`, `mooc.out`, `ec2_price.out` | [`Infrastructure`](zonal_model::Infrastructure) of data-centre cities; [`Demand`](zonal_model::Demand) of user cities |
//! | [`eua`] | EUA edge sites and users (Melbourne CBD) | [`Infrastructure`](zonal_model::Infrastructure) of edge zones; [`Demand`](zonal_model::Demand) of users |

use std::fmt;

pub mod eua;
pub mod geovideo;
pub mod graphml;
mod text;
pub mod wondernetwork;

pub use eua::{import_eua_sites, import_eua_users, EuaOptions};
pub use geovideo::{
    import_dc_nodes, import_manydc, import_mooc, parse_price_table, GeoVideoOptions, MoocOptions, PricePoint,
};
pub use graphml::{import_graphml, DatacenterRule, GraphmlOptions};
pub use wondernetwork::{import_wondernetwork, LatencyMatrix};

/// What an importer did besides the plain conversion: merged parallel links, dropped
/// self-loops, imputed coordinates, skipped rows. Shown to the user by `zonal inspect`/`convert`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub notes: Vec<String>,
}

/// An importer failure, located as precisely as the format allows.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ImportError {}

/// Reads `rel` under the shared reference data folder (`<workspace>/../shared/data`):
/// its path (for messages and import names) and text. A missing file fails the test, saying
/// what is missing and how to get the data ([`zonal_testdata`]).
#[cfg(test)]
pub(crate) fn shared_data_file(rel: &str) -> (String, String) {
    (zonal_testdata::path(rel).display().to_string(), zonal_testdata::read(rel))
}
