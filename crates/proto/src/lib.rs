//! Zonal's wire protocol, shared by the daemons and the CLI.
//!
//! * [`wire`] — the REST bodies in the FUSION `/1.0` layout (domain, zone and instance side).
//! * [`error`] — errors as JSON `{error, detail}`: a short machine code and a sentence naming
//!   what went wrong, where, and what was expected.
//! * [`roles`] — who is calling: domain admin, service provider, zone manager, domain (when it
//!   calls a zone), instance (when it reports to its zone).
//! * [`env`] — the environment a DC adaptor gives an instance, and its port-map codec.
//! * [`client`] — a small typed HTTP client (reqwest) used by the CLI and by domain → zone
//!   and instance → zone calls; HTTPS verified against the public roots and a configured CA.
//! * [`server`] — the tower/axum layers both daemons share: request ids, latency metrics,
//!   error mapping, a route table that also yields the OpenAPI document and the role rules,
//!   the audit layer, and HTTPS serving (rustls).
//! * [`audit`] — the audit log of every write: one JSON line per request, bounded, durable.
//!
//! Design choice: bodies are plain JSON objects, not FUSION's `{status, message, response}`
//! envelope — the HTTP status carries the outcome and errors carry `{error, detail}`; the
//! envelope adds nothing a client can use and every FUSION example body still fits inside.

pub mod audit;
pub mod client;
pub mod env;
pub mod error;
pub mod openapi;
pub mod peer;
pub mod roles;
pub mod server;
pub mod wire;

pub use client::{Client, ClientError};
pub use error::{ApiError, ErrorBody};
pub use roles::{Principal, Role};

/// The API version prefix of every resource.
pub const API: &str = "/1.0";

/// A fresh secret: 32 random bytes from the operating system's generator (`getrandom(2)`),
/// hex-encoded (64 characters, 256 bits).
///
/// There is no weak fallback: when the generator fails, this is an error naming why, and no
/// secret is made.
pub fn try_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        format!("the operating system's random number generator failed ({e}); no secret can be made without it")
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// [`try_secret`] for callers that cannot go on without a secret: a failing OS generator
/// stops the caller (a panic naming why) rather than yield a guessable secret.
pub fn secret() -> String {
    match try_secret() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// The UTC calendar date `(year, month, day)` of `ms` (milliseconds since the Unix epoch).
pub fn civil_date(ms: u64) -> (i64, u32, u32) {
    let days = (ms / 86_400_000) as i64;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// `ms` (milliseconds since the Unix epoch) as an RFC 3339 UTC time, e.g.
/// `2026-05-01T10:00:00.250Z`.
pub fn rfc3339(ms: u64) -> String {
    let (year, month, day) = civil_date(ms);
    let rem = ms / 1000 % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// A time span such as `90s`, `15m`, `12h`, `30d` or `2w` (one number, one unit: ms, s, m,
/// h, d or w). Used for token lifetimes and audit windows; at most 100 years.
pub fn parse_span(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let expected = "expected a span such as 90s, 15m, 12h, 30d or 2w (a whole number and one unit: ms, s, m, h, d, w)";
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?}: {expected}"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{text:?}: {expected}")),
    };
    const MAX_MS: u64 = 100 * 366 * 86_400_000;
    match n.checked_mul(unit_ms) {
        Some(ms) if ms <= MAX_MS => Ok(std::time::Duration::from_millis(ms)),
        _ => Err(format!("{text:?}: too long; at most 100 years")),
    }
}

/// Wall-clock milliseconds since the Unix epoch (the daemons' `now` for the pure decisions).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_hex_and_differ() {
        let a = try_secret().expect("secret");
        let b = try_secret().expect("secret");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_777_629_600_250), "2026-05-01T10:00:00.250Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn spans_parse_with_units_and_refuse_the_rest() {
        assert_eq!(parse_span("30d").expect("30d").as_secs(), 30 * 86_400);
        assert_eq!(parse_span("90s").expect("90s").as_secs(), 90);
        assert_eq!(parse_span("1500ms").expect("ms").as_millis(), 1500);
        assert_eq!(parse_span("2w").expect("2w").as_secs(), 14 * 86_400);
        for bad in ["", "d", "30", "30 d", "-1d", "1.5h", "3y", "99999999999999999999d", "1000000d"] {
            let e = parse_span(bad).expect_err(bad);
            assert!(e.contains("expected a span") || e.contains("too long"), "{bad}: {e}");
        }
    }
}
