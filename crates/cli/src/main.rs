//! `zonal`: the command-line shell over Zonal's libraries. It parses arguments, calls the
//! library, and prints: tables for people, `--output json` for scripts, a one-line reason
//! and a non-zero exit on failure.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod convert;
mod inspect;
mod table;
mod validate;

#[derive(Parser)]
#[command(
    name = "zonal",
    version,
    about = "Zonal: a service orchestrator for distributed edge and cloud infrastructure"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check descriptors and datasets; prints every error with file:line:column.
    Validate(validate::Args),
    /// Summarise descriptors and datasets: zones, hosts, capacity, links, services, regions.
    Inspect(inspect::Args),
    /// Convert TOSCA, GraphML or a dataset into native YAML that `zonal validate` accepts.
    Convert(convert::Args),
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables for people.
    #[default]
    Table,
    /// One JSON document for scripts.
    Json,
}

/// A failure the user should see as one line, with the exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::new(1, format!("{e:#}"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Convert(a) => convert::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("zonal: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
