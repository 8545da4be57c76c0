//! `zonal delete service NAME`: terminate everywhere (domain → zone → adaptor), then unregister.

use std::time::{Duration, Instant};

use crate::common::{self, parse_duration, Conn};
use crate::{Failure, Output};

#[derive(clap::Subcommand)]
pub enum What {
    /// A service: its instances are stopped in every zone, then it is unregistered.
    Service { name: String },
    /// A zone (refused while it runs services).
    Zone { name: String },
    /// A user and its tokens (refused while it owns running services).
    User { name: String },
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    /// Return once the deletion is accepted.
    #[arg(long, global = true)]
    pub no_wait: bool,
    #[arg(long, default_value = "60s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        match &args.what {
            What::Zone { name } => {
                client.delete(&format!("/1.0/zones/{name}")).await?;
                println!("zone {name} deleted");
            }
            What::User { name } => {
                client.delete(&format!("/1.0/users/{name}")).await?;
                println!("user {name} deleted");
            }
            What::Service { name } => {
                let start = Instant::now();
                client.delete(&format!("/1.0/services/{name}")).await?;
                if args.no_wait {
                    println!("service {name}: deletion accepted");
                    return Ok(());
                }
                let deadline = start + args.timeout;
                loop {
                    match client.get::<serde_json::Value>(&format!("/1.0/services/{name}")).await {
                        Err(e) if e.status() == Some(404) => break,
                        Err(e) => return Err(e.into()),
                        Ok(v) => {
                            if Instant::now() >= deadline {
                                let msg =
                                    v.get("message").and_then(|m| m.as_str()).unwrap_or("instances still stopping");
                                return Err(Failure::new(
                                    1,
                                    format!("service {name} not gone after {:?}: {msg}", args.timeout),
                                ));
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                match args.output {
                    Output::Json => common::print_json(
                        &serde_json::json!({"deleted": name, "seconds": start.elapsed().as_secs_f64()}),
                    ),
                    Output::Table => {
                        println!("service {name} terminated and deleted ({:.1} s)", start.elapsed().as_secs_f64())
                    }
                }
            }
        }
        Ok(())
    })
}
