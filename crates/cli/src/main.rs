//! `zonal`: the command-line shell over Zonal's libraries. It parses arguments, calls the
//! library, and prints: tables for people, `--output json` for scripts, a one-line reason
//! and a non-zero exit on failure.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod apply;
mod audit;
mod bench;
mod common;
mod consolidate;
mod convert;
mod decision;
mod delete;
mod describe;
mod domain;
mod get;
mod inspect;
mod load;
mod logs;
mod plan;
mod resolve;
mod table;
mod tls;
mod token;
mod up;
mod validate;
mod workload;
mod zone;

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
    /// Place services offline: FUSION utility LP, INPUT chain ILP; checked plans, cost/utility curves.
    Plan(plan::Args),
    /// Run a benchmark suite (geo-video: FUSION LP; zoo: INPUT chain ILP), writing CSV and a summary.
    Bench(bench::Args),
    /// Run a whole domain on this machine: a domain orchestrator and one zone manager per zone.
    Up(up::Args),
    /// Register a service and deploy it where the optimiser decides (--dry-run: show the decision as a diff).
    Apply(apply::Args),
    /// List zones, services, instances or users.
    Get(get::Args),
    /// Show one service: placement, instances, slots, state.
    Describe(describe::Args),
    /// Pack running instances onto fewer hosts: a checked migration plan; --apply carries it out.
    Consolidate(consolidate::Args),
    /// Delete a service (terminating it everywhere), a zone or a user.
    Delete(delete::Args),
    /// Show the log of an instance.
    Logs(logs::Args),
    /// Which zone endpoint a client at a position is sent to (latency utility, slots, spill-over).
    Resolve(resolve::Args),
    /// Open sessions from client regions (Poisson arrivals) and report what happened to them.
    Load(load::Args),
    /// Manage bearer tokens: create (with a lifetime), list, revoke.
    Token(token::Args),
    /// Show the audit log of writes: who, what, when, result (admin only).
    Audit(audit::Args),
    /// Run the domain orchestrator daemon.
    Domain(domain::Args),
    /// Run a zone manager daemon.
    Zone(zone::Args),
    /// Run the bundled demo service: a TCP session server with session slots.
    Workload(workload::Args),
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
    if !matches!(cli.command, Command::Up(_) | Command::Domain(_) | Command::Zone(_) | Command::Workload(_)) {
        // Client commands behave like Unix tools when their output pipe closes (`| head`):
        // they end quietly instead of panicking on a failed print.
        // SAFETY: restores the default disposition of SIGPIPE before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Up(a) => up::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Get(a) => get::run(a),
        Command::Describe(a) => describe::run(a),
        Command::Consolidate(a) => consolidate::run(a),
        Command::Delete(a) => delete::run(a),
        Command::Logs(a) => logs::run(a),
        Command::Resolve(a) => resolve::run(a),
        Command::Load(a) => load::run(a),
        Command::Token(a) => token::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Domain(a) => domain::run(a),
        Command::Zone(a) => zone::run(a),
        Command::Workload(a) => workload::run(a),
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
