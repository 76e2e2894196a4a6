//! Putting a finished PKI into the output folder so that a failed run leaves nothing
//! half-written.
//!
//! Everything is first written into a staging folder on the same file system as the
//! destination, then moved into place with `rename`, which is atomic per entry:
//!
//! - **The output folder does not exist.** Staging is a hidden temporary folder in its
//!   parent and is renamed to the output folder in one step: readers see no folder, or
//!   the whole PKI. The folder gets the mode `mkdir` would give it; the secrets in it
//!   are 0600 on their own.
//! - **It exists** (empty, or anything with `force`). Staging is a hidden temporary
//!   folder *inside* it (so the renames never cross a mount point, as they would for a
//!   Docker volume), and the top-level entries are renamed in one by one, `ca.pem`
//!   last. With `force`, each entry already there is first renamed aside into a second
//!   hidden folder, deleted at the end. If any step fails, the entries moved so far are
//!   moved back and the old ones restored. The folder itself (owner, mode, mount) is
//!   left as it was; entries we do not make are left alone.
//!
//! The temporary folders are removed when dropped, on success and on error. Only a
//! crash (power loss, SIGKILL) can leave one behind, as a `.certs-dev-*` folder.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::PkiError;
use crate::files::sync_dir;
use crate::layout::{CA_CERT_FILE, TOP_LEVEL_ENTRIES};

/// Prefix of the staging folder.
const STAGING_PREFIX: &str = ".certs-dev-staging-";
/// Prefix of the folder that holds replaced entries until the end of a forced run.
const REPLACED_PREFIX: &str = ".certs-dev-replaced-";

/// Where the PKI goes, as found before any work starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The output folder does not exist; its parent does.
    New { dir: PathBuf, parent: PathBuf },
    /// The output folder exists and may be written into.
    Existing { dir: PathBuf, replace: bool },
}

impl Target {
    /// Checks the output folder: refuses an existing CA or other files unless `force`.
    pub(crate) fn inspect(dir: &Path, force: bool) -> Result<Target, PkiError> {
        if dir.as_os_str().is_empty() {
            return Err(PkiError::EmptyOutputPath);
        }
        match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {
                if !force {
                    if fs::symlink_metadata(dir.join(CA_CERT_FILE)).is_ok() {
                        return Err(PkiError::CaExists {
                            dir: dir.to_owned(),
                        });
                    }
                    if let Some(entry) = first_entry(dir)? {
                        return Err(PkiError::DirNotEmpty {
                            dir: dir.to_owned(),
                            entry,
                        });
                    }
                }
                Ok(Target::Existing {
                    dir: dir.to_owned(),
                    replace: force,
                })
            }
            Ok(_) => Err(PkiError::NotADirectory {
                path: dir.to_owned(),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                    _ => PathBuf::from("."),
                };
                match fs::metadata(&parent) {
                    Ok(meta) if meta.is_dir() => Ok(Target::New {
                        dir: dir.to_owned(),
                        parent,
                    }),
                    Ok(_) => Err(PkiError::NotADirectory { path: parent }),
                    Err(e) if e.kind() == ErrorKind::NotFound => Err(PkiError::ParentMissing {
                        dir: dir.to_owned(),
                        parent,
                    }),
                    Err(e) => Err(PkiError::io("use the folder", parent, e)),
                }
            }
            Err(e) => Err(PkiError::io("use the output folder", dir, e)),
        }
    }

    /// Makes the staging folder on the destination's file system.
    pub(crate) fn staging(&self) -> Result<TempDir, PkiError> {
        let within = match self {
            Target::New { parent, .. } => parent,
            Target::Existing { dir, .. } => dir,
        };
        tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .tempdir_in(within)
            .map_err(|e| PkiError::io("create a staging folder in", within, e))
    }

    /// Moves the finished PKI from `staging` into place (see the module docs).
    pub(crate) fn publish(&self, staging: TempDir) -> Result<(), PkiError> {
        match self {
            Target::New { dir, parent } => {
                fs::rename(staging.path(), dir)
                    .map_err(|e| PkiError::io("move the new PKI into place at", dir, e))?;
                // The staging path no longer exists; there is nothing left to remove.
                let _ = staging.keep();
                sync_or_warn(parent);
            }
            Target::Existing { dir, replace } => {
                move_entries_in(staging.path(), dir, *replace)?;
                sync_or_warn(dir);
            }
        }
        Ok(())
    }
}

fn first_entry(dir: &Path) -> Result<Option<String>, PkiError> {
    let mut entries = fs::read_dir(dir).map_err(|e| PkiError::io("list", dir, e))?;
    match entries.next() {
        None => Ok(None),
        Some(Ok(entry)) => Ok(Some(entry.file_name().to_string_lossy().into_owned())),
        Some(Err(e)) => Err(PkiError::io("list", dir, e)),
    }
}

/// One entry moved in: its name, and whether an old entry was moved aside for it.
type Moved = (&'static str, bool);

/// Renames each of [`TOP_LEVEL_ENTRIES`] from `staging` into `dir`, all or nothing.
pub(crate) fn move_entries_in(staging: &Path, dir: &Path, replace: bool) -> Result<(), PkiError> {
    let replaced = tempfile::Builder::new()
        .prefix(REPLACED_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| PkiError::io("create a folder for replaced files in", dir, e))?;
    let mut moved: Vec<Moved> = Vec::with_capacity(TOP_LEVEL_ENTRIES.len());
    for name in TOP_LEVEL_ENTRIES {
        match move_one_in(name, staging, dir, replaced.path(), replace) {
            Ok(had_old) => moved.push((name, had_old)),
            Err(e) => {
                roll_back(&moved, staging, dir, replaced.path());
                return Err(e);
            }
        }
    }
    // Dropping `replaced` deletes the old PKI.
    Ok(())
}

fn move_one_in(
    name: &'static str,
    staging: &Path,
    dir: &Path,
    replaced: &Path,
    replace: bool,
) -> Result<bool, PkiError> {
    let dest = dir.join(name);
    let had_old = match fs::symlink_metadata(&dest) {
        Ok(_) if !replace => {
            // Appeared since the folder was inspected: another run is writing here.
            return Err(PkiError::DirNotEmpty {
                dir: dir.to_owned(),
                entry: name.to_owned(),
            });
        }
        Ok(_) => {
            fs::rename(&dest, replaced.join(name))
                .map_err(|e| PkiError::io("move aside the old", &dest, e))?;
            true
        }
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(PkiError::io("inspect", &dest, e)),
    };
    if let Err(e) = fs::rename(staging.join(name), &dest) {
        if had_old {
            restore(&replaced.join(name), &dest);
        }
        return Err(PkiError::io(
            "move the new PKI file into place at",
            &dest,
            e,
        ));
    }
    Ok(had_old)
}

fn roll_back(moved: &[Moved], staging: &Path, dir: &Path, replaced: &Path) {
    for &(name, had_old) in moved.iter().rev() {
        restore(&dir.join(name), &staging.join(name));
        if had_old {
            restore(&replaced.join(name), &dir.join(name));
        }
    }
}

fn restore(from: &Path, to: &Path) {
    if let Err(e) = fs::rename(from, to) {
        tracing::error!(from = %from.display(), to = %to.display(), error = %e, "cannot roll back a move");
    }
}

fn sync_or_warn(dir: &Path) {
    // The PKI is complete and in place; a failed sync only weakens durability.
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(error = %e, "the PKI is written but its folder could not be synced");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(dir: &Path, tag: &str, skip: Option<&str>) {
        for name in TOP_LEVEL_ENTRIES.iter().filter(|n| Some(**n) != skip) {
            fs::write(dir.join(name), tag).unwrap();
        }
    }

    #[test]
    fn a_failed_move_puts_the_old_entries_back() {
        let dir = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        fill(dir.path(), "old", None);
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        // The last entry is missing from staging, so its move fails after all others.
        fill(staging.path(), "new", Some(CA_CERT_FILE));
        assert!(move_entries_in(staging.path(), dir.path(), true).is_err());
        for name in TOP_LEVEL_ENTRIES {
            assert_eq!(
                fs::read_to_string(dir.path().join(name)).unwrap(),
                "old",
                "{name}"
            );
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            TOP_LEVEL_ENTRIES.len() + 1
        );
    }

    #[test]
    fn a_forced_move_replaces_and_removes_the_old_entries() {
        let dir = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        fill(dir.path(), "old", None);
        fill(staging.path(), "new", None);
        move_entries_in(staging.path(), dir.path(), true).unwrap();
        for name in TOP_LEVEL_ENTRIES {
            assert_eq!(
                fs::read_to_string(dir.path().join(name)).unwrap(),
                "new",
                "{name}"
            );
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            TOP_LEVEL_ENTRIES.len()
        );
    }

    #[test]
    fn without_replace_an_entry_that_appeared_meanwhile_stops_the_move() {
        let dir = tempfile::tempdir().unwrap();
        let staging = tempfile::tempdir().unwrap();
        fill(staging.path(), "new", None);
        fs::write(dir.path().join(CA_CERT_FILE), "other run").unwrap();
        let err = move_entries_in(staging.path(), dir.path(), false).unwrap_err();
        assert!(matches!(err, PkiError::DirNotEmpty { .. }), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(
            fs::read_to_string(dir.path().join(CA_CERT_FILE)).unwrap(),
            "other run"
        );
    }
}
