//! The limits on every input the readers take, in one place, and the bounded file read they
//! all use. Each limit is far above what a real input needs and far below what would hurt
//! the process reading it (a daemon reads manifests from the network); passing one is an
//! error naming the limit, never a crash or an unbounded allocation.
//!
//! YAML's own limits (size, nesting depth, node count, alias expansion) are in
//! [`crate::yaml`]; they protect every YAML path: native descriptors, TOSCA, CSAR entries and
//! manifests sent to the daemons.

use std::io::Read;
use std::path::Path;

pub use crate::yaml::{MAX_YAML_ALIASES, MAX_YAML_ALIAS_NODES, MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES};

/// The largest dataset file read (GraphML, CSV, text): 64 MiB. The largest reference
/// dataset file (WonderNetwork's grouped pings) is 2.9 MiB.
pub const MAX_DATASET_BYTES: u64 = 64 << 20;
/// The largest CSAR (zip) archive read: 16 MiB.
pub const MAX_CSAR_BYTES: u64 = 16 << 20;
/// The most entries of a CSAR archive looked at.
pub const MAX_CSAR_ENTRIES: usize = 1_000;
/// The most bytes unpacked from a CSAR archive, all entries together (a zip bomb stops
/// here, whatever sizes its headers claim): 32 MiB.
pub const MAX_CSAR_UNPACKED_BYTES: u64 = 32 << 20;
/// The most diagnostics one document reports; past it one last diagnostic says how many
/// more there were.
pub const MAX_DIAGNOSTICS: usize = 1_000;

/// Reads at most `limit` bytes of `path`; a larger file is an error naming its size and the
/// limit (`what` names the limit), checked before reading and again while reading (a file
/// that grows, or a device, stops at the limit).
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read file: {e}"))?;
    let too_big = |size: u64| format!("the file is {size} bytes or more; {what} are limited to {limit} bytes");
    if let Ok(meta) = file.metadata() {
        if meta.is_file() && meta.len() > limit {
            return Err(too_big(meta.len()));
        }
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read file: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(limit + 1));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_text_limited(path: &Path, limit: u64, what: &str) -> Result<String, String> {
    let bytes = read_limited(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| {
        format!("the file is not UTF-8 text (invalid byte at offset {}); expected UTF-8", e.utf8_error().valid_up_to())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_past_the_limit_are_refused_before_they_are_read() {
        let dir = tempfile_dir();
        let p = dir.join("big.yaml");
        std::fs::write(&p, vec![b'a'; 2048]).expect("write");
        assert_eq!(read_limited(&p, 4096, "x").map(|b| b.len()), Ok(2048));
        let e = read_limited(&p, 1024, "YAML descriptors").expect_err("too big");
        assert!(e.contains("2048 bytes") && e.contains("limited to 1024 bytes"), "{e}");
        std::fs::write(&p, [0xff, 0xfe, b'a']).expect("write");
        let e = read_text_limited(&p, 1024, "x").expect_err("not utf-8");
        assert!(e.contains("offset 0") && e.contains("UTF-8"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("zonal-limits-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }
}
