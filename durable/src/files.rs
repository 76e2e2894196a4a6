//! Private, durable files: who may read what fieldsync keeps, and writes that a crash
//! leaves whole or not at all (ARCHITECTURE "Operations": data folder 0700; database,
//! staging and media 0600).
//!
//! Folders are 0700 and files 0600, set at creation whatever the umask (with the usual
//! 022 the evidence database and every recording were readable by any local user). A
//! folder or file left more open by an earlier version is tightened, with a warning
//! naming it. SQLite creates its write-ahead log and shared-memory file with the
//! database file's mode, so creating the database file 0600 before SQLite opens it
//! covers all three.
//!
//! A file written whole goes to a temporary beside its target, is fsync'd, renamed into
//! place and its folder fsync'd. The temporary is always a new file (`O_CREAT | O_EXCL
//! | O_NOFOLLOW`): one left by a crash, or a symbolic link planted at its name, is
//! removed (the link itself, not its target) and never written through.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of fieldsync's folders.
pub const PRIVATE_DIR: u32 = 0o700;
/// Mode of fieldsync's files that hold evidence or secrets.
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode 0700; an existing folder that others
/// may enter is tightened to 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)?;
    tighten(dir, PRIVATE_DIR)
}

/// Options that create a file with mode 0600 and never follow a symbolic link.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(PRIVATE_FILE).custom_flags(libc::O_NOFOLLOW);
    options
}

/// Makes sure the SQLite file `path` exists with mode 0600 before SQLite opens it, and
/// tightens it and its write-ahead log and shared-memory file if an earlier version
/// left them open to others.
///
/// An existing database is never opened here, only looked at and `chmod`ed by name:
/// closing any descriptor of a file drops every POSIX lock this process holds on it,
/// and SQLite's connections in this process may hold some (the classic way to corrupt
/// a SQLite database).
pub fn private_database(path: &Path) -> io::Result<()> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(PRIVATE_FILE)
        .open(path);
    match created {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        match tighten(Path::new(&file), PRIVATE_FILE) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Creates `path` as a new, empty file with `mode`, never opening an existing file or
/// following a link: whatever is already at `path` (a temporary left by a crash, a
/// planted symbolic link) is removed first, the link itself and not its target.
pub fn create_fresh(path: &Path, mode: u32) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}

/// Takes group and other permissions away from `path`, giving it `mode`; refuses a
/// symbolic link (nothing of fieldsync's is one).
pub fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a symbolic link", path.display()),
        ));
    }
    let current = meta.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{mode:o}"),
            "tightening permissions: this is its owner's alone"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Fsyncs a folder so that a rename or a new entry in it survives power loss.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically and durably (mode 0644, for certificates and
/// settings; see [`write_atomic_mode`]). The folder is made private if missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// [`write_atomic`] with Unix permissions `mode` (0o600 for private keys).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut file = create_fresh(&tmp, mode)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_the_whole_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("file.txt");
        write_atomic(&path, b"first version, longer").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file.txt")]);
    }

    #[test]
    fn a_private_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        write_atomic_mode(&path, b"secret", 0o600).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_stale_temporary_or_a_planted_link_is_replaced_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"not yours").unwrap();
        let path = dir.path().join("device.key");
        // A link where the temporary will be, and a stale temporary of another file.
        std::os::unix::fs::symlink(&victim, dir.path().join(".device.key.tmp")).unwrap();
        fs::write(dir.path().join(".agent.toml.tmp"), b"half a file").unwrap();
        write_atomic_mode(&path, b"secret", PRIVATE_FILE).unwrap();
        write_atomic(&dir.path().join("agent.toml"), b"x = 1").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"not yours");
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(fs::read(dir.path().join("agent.toml")).unwrap(), b"x = 1");
        let mode = fs::symlink_metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, PRIVATE_FILE);
        assert!(!dir.path().join(".device.key.tmp").exists());
    }

    #[test]
    fn folders_and_the_local_store_are_private() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&data).unwrap();
        let db = data.join("agent.db");
        let wal = data.join("agent.db-wal");
        fs::write(&wal, b"").unwrap();
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o644)).unwrap();
        private_database(&db).unwrap();
        for (path, mode) in [
            (&data, PRIVATE_DIR),
            (&db, PRIVATE_FILE),
            (&wal, PRIVATE_FILE),
        ] {
            let got = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(got, mode, "{}", path.display());
        }
    }
}
