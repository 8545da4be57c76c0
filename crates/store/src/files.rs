//! Files only their owner may read: the daemons' state directories and stores, secrets
//! (tokens, keys), the client context, backups.
//!
//! * A private file is mode 0600 and a private directory 0700, whatever the umask: created
//!   so, and *tightened* when found looser (files written by older versions, or by hand).
//! * Tightening never touches a directory that is not the caller's to own: one with the
//!   sticky bit (`/tmp`), the root directory, or one owned by another user is left as it is,
//!   and the caller hears why.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of private files.
pub const FILE_MODE: u32 = 0o600;
/// Mode of private directories.
pub const DIR_MODE: u32 = 0o700;

/// Why a directory was left looser than asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub path: PathBuf,
    pub why: String,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (and its missing parents, each 0700) and sets it to `mode` unless it is not
/// ours to change (see the module doc), in which case the reason is returned.
fn dir_with_mode(dir: &Path, mode: u32) -> io::Result<Option<Left>> {
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    let meta = std::fs::metadata(dir)?;
    let current = meta.permissions().mode() & 0o7777;
    if current == mode {
        return Ok(None);
    }
    let left = |why: &str| Ok(Some(Left { path: dir.to_path_buf(), why: why.to_string() }));
    if current & 0o1000 != 0 {
        return left("it has the sticky bit (a shared directory such as /tmp): choose a directory of your own");
    }
    if dir.canonicalize().map(|p| p.parent().is_none()).unwrap_or(false) {
        return left("it is the root directory");
    }
    if meta.uid() != euid() {
        return left("it belongs to another user");
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    Ok(None)
}

/// Creates `dir` if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> io::Result<Option<Left>> {
    dir_with_mode(dir, DIR_MODE)
}

/// Makes the existing file `path` 0600 if it is looser (nothing when it does not exist).
pub fn tighten_file(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `path` for writing as a new private file (0600), failing if it exists.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).mode(FILE_MODE).open(path)
}

/// Writes `bytes` to `path` atomically (a private temporary file beside it, flushed, then
/// renamed over it): readers see the old content or the new, never a part. The result is
/// 0600 whatever the old file's mode was.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = create_new_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The mode bits (`0o777`) of `path`.
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_and_directories_are_created_and_tightened() {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path().join("a/b/state");
        assert_eq!(private_dir(&state).expect("create"), None);
        assert_eq!(mode_of(&state).expect("mode"), 0o700);
        assert_eq!(mode_of(&dir.path().join("a")).expect("mode"), 0o700, "created parents are private too");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("loosen");
        assert_eq!(private_dir(&state).expect("tighten"), None);
        assert_eq!(mode_of(&state).expect("mode"), 0o700);

        let secret = state.join("token");
        write_private(&secret, b"one").expect("write");
        assert_eq!(mode_of(&secret).expect("mode"), 0o600);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("loosen");
        write_private(&secret, b"two").expect("rewrite");
        assert_eq!((mode_of(&secret).expect("mode"), std::fs::read(&secret).expect("read")), (0o600, b"two".to_vec()));
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("loosen");
        tighten_file(&secret).expect("tighten");
        assert_eq!(mode_of(&secret).expect("mode"), 0o600);
        tighten_file(&state.join("missing")).expect("a missing file is no error");
        assert!(create_new_private(&secret).is_err(), "create_new refuses an existing file");
    }

    #[test]
    fn shared_directories_are_left_alone_with_the_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("dir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("sticky");
        let left = private_dir(&shared).expect("no error").expect("left as it is");
        assert!(left.why.contains("sticky"), "{left:?}");
        assert_eq!(mode_of(&shared).expect("mode"), 0o777);
    }
}
