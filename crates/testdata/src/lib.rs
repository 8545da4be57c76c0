//! Where the tests find the reference data, and a clear failure when it is not there.
//!
//! The reference data (Topology Zoo, WonderNetwork pings, FUSION geo-video, EUA, vector bin
//! packing instances, the Alibaba openb trace, VNMP instances) is read in place from
//! `<repo>/../shared/data` and never copied into the repository. A test that needs a file
//! asks for it here: [`path`] returns where it is, [`read`] its text. When it is missing the
//! test **fails**, naming what is missing, where the data is expected and how to get it, so
//! that a green run means every such test ran (none returns early). `README.md` ("Reference
//! data") says how to get the folder.
//!
//! A dev-dependency of the crates whose tests read the data; nothing else depends on it.

use std::path::{Path, PathBuf};

/// The repository root: the nearest folder holding `Cargo.lock` above the package under test.
///
/// Resolved when the test runs, from the `CARGO_MANIFEST_DIR` cargo sets for it: the value
/// compiled in (`env!`) may name another checkout that shared the target directory and built
/// this crate first, since cargo reuses a workspace crate's build across checkouts.
pub fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let package = package.canonicalize().unwrap_or(package);
    match package.ancestors().find(|d| d.join("Cargo.lock").is_file()) {
        Some(root) => root.to_path_buf(),
        None => package.join("../.."),
    }
}

/// The repository's `examples/` folder.
pub fn examples() -> PathBuf {
    repo_root().join("examples")
}

/// `<repo>/../shared/data`, whether or not it exists.
pub fn data_dir() -> PathBuf {
    let repo = repo_root();
    match repo.parent() {
        Some(parent) => parent.join("shared/data"),
        None => repo.join("../shared/data"),
    }
}

/// The reference data folder; fails the test when it is absent.
#[track_caller]
pub fn dir() -> PathBuf {
    let d = data_dir();
    if !d.is_dir() {
        panic!("{}", missing(&d));
    }
    d
}

/// `relative` (a file or folder) under the reference data folder; fails the test, saying
/// what is missing and how to get it, when it is absent.
#[track_caller]
pub fn path(relative: &str) -> PathBuf {
    let p = data_dir().join(relative);
    if !p.exists() {
        panic!("{}", missing(&p));
    }
    p
}

/// The text of `relative` under the reference data folder; fails the test when it is missing
/// or unreadable.
#[track_caller]
pub fn read(relative: &str) -> String {
    let p = path(relative);
    match std::fs::read_to_string(&p) {
        Ok(text) => text,
        Err(e) => panic!("reference data unreadable: {}: {e}", p.display()),
    }
}

/// The failure message for a missing `what` (a path under, or equal to, the data folder).
pub fn missing(what: &Path) -> String {
    let d = data_dir();
    let folder = if d.is_dir() {
        format!("the folder {} is there, but not this file or folder", d.display())
    } else {
        format!("the folder {} is absent", d.display())
    };
    format!(
        "reference data missing: {} does not exist ({folder}).\n\
         These tests need the reference data at <repo>/../shared/data, read in place and never \
         copied into the repository.\n\
         To get it: put the reference data folder next to the repository as ../shared/data (a \
         copy or a symlink), or assemble it from the public sources listed in the repository's \
         README.md, section \"Reference data\" (Internet Topology Zoo, WonderNetwork pings, \
         FUSION geo-video, EUA, Vectorpack vector bin packing, Alibaba openb, VNEP-2018 VNMP).",
        what.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "reference data missing")]
    fn a_missing_file_fails_the_test() {
        path("no-such-dataset/no-such-file.csv");
    }

    #[test]
    fn the_repository_root_holds_the_workspace() {
        let root = repo_root();
        assert!(root.join("Cargo.lock").is_file() && root.join("crates/testdata").is_dir(), "{}", root.display());
        assert_eq!(examples(), root.join("examples"));
        assert_eq!(data_dir().parent().and_then(Path::parent), root.parent());
    }

    #[test]
    fn the_message_says_what_where_and_how() {
        let m = missing(&data_dir().join("vnmp/20/x.bz2"));
        assert!(m.contains("vnmp/20/x.bz2"), "{m}");
        assert!(m.contains("<repo>/../shared/data"), "{m}");
        assert!(m.contains("To get it") && m.contains("\"Reference data\""), "{m}");
        assert!(data_dir().ends_with("shared/data"), "{}", data_dir().display());
    }
}
