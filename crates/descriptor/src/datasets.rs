//! Recognising dataset files by name and routing them to their importers.

use std::path::Path;

use crate::load::Loaded;

/// The dataset files `read_path` recognises, for error messages.
pub const KNOWN_DATASETS: &str = "*.graphml (Topology Zoo), dcNodes.csv / manydc.out / mooc.out (FUSION geo-video), wondernetwork-servers-*.csv (WonderNetwork, with its pings file beside it), site-*.csv / users-*.csv (EUA)";

/// Reads a dataset file if its name is one Zonal knows; `None` otherwise.
pub fn read_dataset(_path: &Path, _name: &str, _text: &str) -> Option<Loaded> {
    None
}
