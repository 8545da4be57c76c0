//! `zonal token create|list|revoke`: bearer tokens bound to a role, with a lifetime, listed by
//! id (never the secret), revoked by id or by user.

use zonal_proto::wire::{CreateToken, TokenCreated, TokenView};

use crate::common::{self, Conn};
use crate::table::Table;
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
        /// Lifetime: 90s, 12h, 30d, 2w … or `never`. Default: 90d for admin and provider
        /// tokens, never for zone tokens.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List tokens (admin only): id, user, role, created, expires, state. Never the secrets.
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id, or every token of a user (admin only); refused from the
    /// next request on.
    Revoke {
        /// The token's id, as `zonal token list` shows it.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke every token of this user instead.
        #[arg(long)]
        user: Option<String>,
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

fn print_tokens(tokens: &[TokenView], output: Output) {
    match output {
        Output::Json => common::print_json(&tokens),
        Output::Table => {
            let mut t = Table::new(["ID", "USER", "ROLE", "CREATED", "EXPIRES", "STATE"]);
            for v in tokens {
                let state = match v.revoked_ms {
                    Some(at) => format!("revoked {}", zonal_proto::rfc3339(at)),
                    None => v.state.clone(),
                };
                t.row([
                    v.id.clone(),
                    v.user.clone(),
                    v.role.clone(),
                    zonal_proto::rfc3339(v.created_ms),
                    v.expires_ms.map_or_else(|| "never".into(), zonal_proto::rfc3339),
                    state,
                ]);
            }
            print!("{}", t.render());
        }
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let client = args.conn.client()?;
    match &args.action {
        Action::Create { role, name, ttl } => {
            let role_parsed = zonal_proto::Role::parse_user_role(role).map_err(|e| Failure::new(2, e))?;
            if let Some(t) = ttl.as_deref().filter(|t| t.trim() != "never") {
                zonal_proto::parse_span(t).map_err(|e| Failure::new(2, format!("--ttl {e}, or never")))?;
            }
            let name = match name {
                Some(n) => n.clone(),
                None => {
                    let suffix = zonal_proto::try_secret().map_err(|e| Failure::new(1, e))?;
                    format!("{}-{}", role_parsed.as_str(), &suffix[..6])
                }
            };
            let req = CreateToken {
                role: role_parsed.as_str().to_string(),
                name,
                ttl: ttl.as_deref().map(|t| t.trim().to_string()),
            };
            common::client_runtime()?.block_on(async {
                let t: TokenCreated = client.post("/1.0/tokens", &req).await?;
                match args.output {
                    Output::Json => common::print_json(&t),
                    Output::Table => {
                        eprintln!(
                            "token {} for {} (role {}, expires {}); it is shown only now:",
                            t.id,
                            t.name,
                            t.role,
                            t.expires_ms.map_or_else(|| "never".into(), zonal_proto::rfc3339)
                        );
                        println!("{}", t.token);
                    }
                }
                Ok(())
            })
        }
        Action::List { user } => common::client_runtime()?.block_on(async {
            let path = match user {
                Some(u) => {
                    format!("/1.0/tokens?user={}", form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>())
                }
                None => "/1.0/tokens".to_string(),
            };
            let tokens: Vec<TokenView> = client.get(&path).await?;
            print_tokens(&tokens, args.output);
            Ok(())
        }),
        Action::Revoke { id, user } => common::client_runtime()?.block_on(async {
            let path = match (id, user) {
                (Some(id), None) => format!("/1.0/tokens/{}", id.trim()),
                (None, Some(u)) => format!("/1.0/users/{u}/tokens"),
                _ => return Err(Failure::new(2, "give a token id or --user NAME (one of the two)")),
            };
            let (_, bytes) = client.send_raw(zonal_proto::client::Method::DELETE, &path, None).await?;
            let decoded = match id {
                Some(_) => serde_json::from_slice::<TokenView>(&bytes).map(|t| vec![t]),
                None => serde_json::from_slice::<Vec<TokenView>>(&bytes),
            };
            let revoked = decoded.map_err(|e| Failure::new(1, format!("DELETE {path}: unexpected answer ({e})")))?;
            if args.output == Output::Table {
                eprintln!("revoked (refused from the next request on):");
            }
            print_tokens(&revoked, args.output);
            Ok(())
        }),
    }
}
