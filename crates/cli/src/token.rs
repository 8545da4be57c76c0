//! `zonal token create --role ROLE [--name NAME]`: a bearer token bound to a role.

use zonal_proto::wire::{CreateToken, TokenCreated};

use crate::common::{self, Conn};
use crate::{Failure, Output};

#[derive(clap::Subcommand)]
pub enum Action {
    /// Create a token (admin only). Prints the token; the domain keeps only its hash.
    Create {
        /// admin, provider or zone.
        #[arg(long)]
        role: String,
        /// The user the token belongs to (created when missing). For a zone: the zone's name.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let Action::Create { role, name } = &args.action;
    let role_parsed = zonal_proto::Role::parse_user_role(role).map_err(|e| Failure::new(2, e))?;
    let name = name.clone().unwrap_or_else(|| format!("{}-{}", role_parsed.as_str(), &zonal_proto::secret()[..6]));
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        let t: TokenCreated = client.post("/1.0/tokens", &CreateToken { role: role.clone(), name }).await?;
        match args.output {
            Output::Json => common::print_json(&t),
            Output::Table => {
                eprintln!("token for {} (role {}); it is shown only now:", t.name, t.role);
                println!("{}", t.token);
            }
        }
        Ok(())
    })
}
