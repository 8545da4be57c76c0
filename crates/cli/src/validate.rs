//! `zonal validate FILE...`

use std::path::PathBuf;

use zonal_descriptor::import::graphml::DatacenterRule;
use zonal_descriptor::{load_paths_with, DatasetOptions, Loaded};

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// Descriptor or dataset files, read together (cross-references are checked across them).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub datasets: DatasetArgs,
}

/// Choices the dataset importers need that the files do not carry.
#[derive(clap::Args, Clone, Debug)]
pub struct DatasetArgs {
    /// GraphML: which topology nodes are data centres (zones with hosts): a number N (the N
    /// best-connected nodes), `all`, `none`, or a comma-separated list of node names.
    #[arg(long, value_name = "N|all|none|NAMES", default_value = "20")]
    pub datacenters: String,
    /// User datasets (mooc.out, EUA users): create demand entries for this service.
    #[arg(long, value_name = "SERVICE")]
    pub demand_service: Option<String>,
    /// mooc.out: session slots per unit of demand weight.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub slots_per_weight: f64,
    /// EUA users: one region per user instead of one per nearest site.
    #[arg(long)]
    pub region_per_user: bool,
}

impl Default for DatasetArgs {
    fn default() -> Self {
        DatasetArgs { datacenters: "20".into(), demand_service: None, slots_per_weight: 1.0, region_per_user: false }
    }
}

impl DatasetArgs {
    pub fn options(&self) -> Result<DatasetOptions, Failure> {
        let mut o = DatasetOptions::default();
        o.graphml.datacenters = match self.datacenters.as_str() {
            "all" => DatacenterRule::All,
            "none" => DatacenterRule::None,
            n if n.bytes().all(|b| b.is_ascii_digit()) => DatacenterRule::TopDegree(
                n.parse().map_err(|_| Failure::new(2, format!("--datacenters: expected a number, found {n:?}")))?,
            ),
            list => DatacenterRule::Named(list.split(',').map(|s| s.trim().to_string()).collect()),
        };
        o.service = self.demand_service.clone();
        if !(self.slots_per_weight.is_finite() && self.slots_per_weight > 0.0) {
            return Err(Failure::new(
                2,
                format!("--slots-per-weight: expected a positive number, found {}", self.slots_per_weight),
            ));
        }
        o.slots_per_weight = self.slots_per_weight;
        o.cluster_users = !self.region_per_user;
        Ok(o)
    }
}

/// Loads and cross-checks `files`; on any problem prints every diagnostic to stderr and
/// fails with a one-line summary.
pub fn load_valid(files: &[PathBuf], datasets: &DatasetArgs) -> Result<Loaded, Failure> {
    let loaded = load_paths_with(files, &datasets.options()?);
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    if loaded.is_valid() {
        return Ok(loaded);
    }
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let n = loaded.diagnostics.len();
    Err(Failure::new(1, format!("{n} error{} found; nothing was used", if n == 1 { "" } else { "s" })))
}

pub fn run(args: Args) -> Result<(), Failure> {
    let loaded = load_valid(&args.files, &args.datasets)?;
    for (doc, source) in loaded.bundle.documents.iter().zip(&loaded.sources) {
        println!("{}: ok ({} {})", source.file, doc.kind(), doc.name());
    }
    Ok(())
}
