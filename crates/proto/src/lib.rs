//! Zonal's wire protocol, shared by the daemons and the CLI.
//!
//! * [`wire`] — the REST bodies in the FUSION `/1.0` layout (domain, zone and instance side).
//! * [`error`] — errors as JSON `{error, detail}`: a short machine code and a sentence naming
//!   what went wrong, where, and what was expected.
//! * [`roles`] — who is calling: domain admin, service provider, zone manager, domain (when it
//!   calls a zone), instance (when it reports to its zone).
//! * [`env`] — the environment a DC adaptor gives an instance, and its port-map codec.
//! * [`client`] — a small typed HTTP client (reqwest) used by the CLI and by domain → zone
//!   and instance → zone calls.
//! * [`server`] — the tower/axum layers both daemons share: request ids, latency metrics,
//!   error mapping, a route table that also yields the OpenAPI document and the role rules.
//!
//! Design choice: bodies are plain JSON objects, not FUSION's `{status, message, response}`
//! envelope — the HTTP status carries the outcome and errors carry `{error, detail}`; the
//! envelope adds nothing a client can use and every FUSION example body still fits inside.

pub mod client;
pub mod env;
pub mod error;
pub mod roles;
pub mod server;
pub mod wire;

pub use client::{Client, ClientError};
pub use error::{ApiError, ErrorBody};
pub use roles::{Principal, Role};

/// The API version prefix of every resource.
pub const API: &str = "/1.0";

/// A fresh secret: 32 random bytes from the OS, hex-encoded (64 characters).
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    let ok =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_ok();
    if !ok {
        // No /dev/urandom: fall back to the std hasher's per-process random keys.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Wall-clock milliseconds since the Unix epoch (the daemons' `now` for the pure decisions).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
