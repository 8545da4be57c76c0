//! Readers for Zonal's inputs. Every reader returns the model and every error it found, each
//! naming file, line, column, field and what was expected; nothing from an invalid input is
//! used.

pub mod datasets;
pub mod decode;
pub mod import;
pub mod limits;
pub mod load;
pub mod manifest;
pub mod native;
pub mod tosca;
pub mod writer;
pub mod yaml;

pub use datasets::DatasetOptions;
pub use decode::Diagnostic;
pub use load::{load_paths, load_paths_with, read_path, read_path_with, read_yaml_str, Loaded, Source};
pub use manifest::{parse_manifest, ManifestError};
pub use writer::write_documents;
