//! `zonal logs INSTANCE`: the tail of an instance's stdout/stderr.

use crate::common::{self, Conn};
use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// Instance id (see `zonal get instances`).
    pub instance: String,
    /// How many lines from the end.
    #[arg(long, short = 'n', default_value_t = 200)]
    pub lines: usize,
    #[command(flatten)]
    pub conn: Conn,
}

pub fn run(args: Args) -> Result<(), Failure> {
    common::init_logging("warn");
    let client = args.conn.client()?;
    common::client_runtime()?.block_on(async {
        let (_, bytes) = client
            .send_raw(
                zonal_proto::client::Method::GET,
                &format!("/1.0/instances/{}/logs?lines={}", args.instance, args.lines),
                None,
            )
            .await?;
        print!("{}", String::from_utf8_lossy(&bytes));
        Ok(())
    })
}
