//! Small file systems that tests fill: a tmpfs mounted at a fresh temporary folder
//! (tests run as root in CI), unmounted when dropped. Without the right to mount,
//! [`Tmpfs::mount`] returns `None` and the test prints a notice and skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for one test.
pub struct Tmpfs {
    dir: tempfile::TempDir,
    fillers: u64,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`, e.g. `"8m"`) with at most `inodes`
    /// files and folders; `None` when mounting is not permitted here.
    pub fn mount(size: &str, inodes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},nr_inodes={inodes},mode=0700"))
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir, fillers: 0 })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes free now.
    pub fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(self.path()).expect("statvfs");
        st.f_bavail * st.f_frsize
    }

    /// Writes a filler file until at most `leave` bytes are free (in 4 KiB steps).
    pub fn fill_leaving(&mut self, leave: u64) {
        self.fillers += 1;
        let path = self.filler(self.fillers);
        let mut file = std::fs::File::create(&path).expect("a filler file");
        let block = vec![0xa5u8; 4096];
        while self.free() > leave {
            if file.write_all(&block).is_err() {
                break;
            }
        }
        let _ = file.sync_all();
    }

    /// Uses up every file slot (inode) left: creating a file or folder then fails with
    /// "no space left on device", while writes to existing files still may succeed.
    pub fn fill_inodes(&mut self) {
        let dir = self.path().join("inode-fillers");
        let _ = std::fs::create_dir(&dir);
        let mut n = 0u64;
        while std::fs::File::create(dir.join(n.to_string())).is_ok() {
            n += 1;
        }
    }

    /// Removes every filler: the space comes back.
    pub fn free_all(&mut self) {
        for n in 1..=self.fillers {
            let _ = std::fs::remove_file(self.filler(n));
        }
        let _ = std::fs::remove_dir_all(self.path().join("inode-fillers"));
    }

    fn filler(&self, n: u64) -> PathBuf {
        self.path().join(format!("filler-{n}"))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
