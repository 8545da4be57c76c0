//! `zonal convert FILE --to yaml`

use std::path::PathBuf;

use clap::ValueEnum;

use crate::validate::load_valid;
use crate::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Zonal's native YAML descriptors.
    Yaml,
}

#[derive(clap::Args)]
pub struct Args {
    /// Input files (TOSCA YAML or CSAR, GraphML, dataset files, or native YAML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub datasets: crate::validate::DatasetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Target::Yaml)]
    pub to: Target,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let loaded = load_valid(&args.files, &args.datasets)?;
    let text = match args.to {
        Target::Yaml => zonal_descriptor::write_documents(&loaded.bundle.documents),
    };
    match args.out {
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| Failure::new(1, format!("cannot write {}: {e}", path.display())))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
