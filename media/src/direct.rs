//! Writing a staging file past the page cache (`O_DIRECT`), one aligned window at a
//! time.
//!
//! Why past the cache: a recording is written once and read back only if the gateway
//! restarts mid-upload, so caching it gains nothing, and on the virtual machines the
//! gateway runs on, copying every byte into freshly allocated page-cache pages was the
//! largest cost of an upload — 2.3 CPU-seconds per GiB written buffered against 0.2
//! direct (`dd … bs=8M conv=fdatasync` against `oflag=direct`), on two cores that the
//! QUIC decryption and the SHA-256 also need. Direct writes must start at, and span,
//! multiples of [`ALIGN`] from a buffer aligned the same way, so the writer gathers
//! bytes in an aligned window, carries the partly written block a chunk starts in, and
//! writes the unaligned tail of a chunk through the ordinary descriptor. Where the file
//! system refuses `O_DIRECT` (tmpfs, some network file systems) every byte goes through
//! the ordinary descriptor instead: same result, more CPU. Durability is unchanged: the
//! caller still fsyncs before it reports an offset.
//!
//! Why a full window is handed out as a [`WindowWrite`] instead of written here: a
//! direct write blocks until the device has the bytes (about 0.8 ms per MiB on the test
//! machine, far longer on a slow disk). The caller runs it on the staging writer pool
//! while the next window fills and is hashed, so an upload is limited by the slower of
//! the disk and the SHA-256, not by their sum, and no thread waits on the network for a
//! chunk's lifetime. Two windows per upload bound the memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Offsets, lengths and buffer addresses of direct writes are multiples of this (the
/// largest logical block size in common use).
const ALIGN: usize = 4096;

/// Bytes gathered before one direct write; also the most one [`DirectWriter::write`]
/// takes.
pub(crate) const WRITE_SIZE: usize = 1 << 20;

/// Windows per writer: one fills while the other is being written.
const WINDOWS: usize = 2;

/// An aligned buffer of [`WRITE_SIZE`] bytes.
pub(crate) struct Window {
    /// Backing store; the window is `buf[start..start + WRITE_SIZE]`.
    buf: Vec<u8>,
    start: usize,
}

impl Window {
    fn new() -> Self {
        let buf = vec![0u8; WRITE_SIZE + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        Self { buf, start }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + WRITE_SIZE]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + WRITE_SIZE]
    }
}

/// The descriptors a window write uses.
struct Descriptors {
    /// Opened with `O_DIRECT`.
    direct: File,
    /// The ordinary descriptor.
    plain: Arc<File>,
    /// False once the file system refused a direct write (this one and every later one
    /// go through the ordinary descriptor).
    usable: AtomicBool,
}

/// A full window's write, for the caller to run on a blocking thread; it gives the
/// window back (see [`DirectWriter::give_back`]).
pub(crate) struct WindowWrite {
    window: Window,
    len: usize,
    pos: u64,
    files: Arc<Descriptors>,
}

impl WindowWrite {
    /// Writes the window's bytes and returns the window.
    pub(crate) fn run(self) -> io::Result<Window> {
        let data = &self.window.bytes()[..self.len];
        let files = &self.files;
        if files.usable.load(Ordering::Relaxed) {
            match files.direct.write_all_at(data, self.pos) {
                // The file system took the descriptor but refuses direct writes.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!("direct writes refused; writing through the page cache");
                    files.usable.store(false, Ordering::Relaxed);
                }
                other => return other.map(|()| self.window),
            }
        }
        files.plain.write_all_at(data, self.pos)?;
        Ok(self.window)
    }
}

/// Writes a byte stream into a file from a given offset, bypassing the page cache where
/// the file system allows it. Full windows come out of [`DirectWriter::write`] as
/// [`WindowWrite`]s; call [`DirectWriter::flush`] (with every window write done) to put
/// the rest into the file. Durability is the caller's fsync.
pub(crate) struct DirectWriter {
    /// The ordinary descriptor: the unaligned tail, the carried block, and everything
    /// when direct writes are unavailable.
    file: Arc<File>,
    /// The window being filled and the spare ones, while the file could be opened
    /// with `O_DIRECT`.
    direct: Option<Direct>,
    /// Bytes gathered in the window.
    len: usize,
    /// File offset of the window's first byte (a multiple of [`ALIGN`] while direct).
    pos: u64,
}

/// A direct writer's windows.
struct Direct {
    files: Arc<Descriptors>,
    window: Window,
    /// Windows neither being filled nor written.
    idle: Vec<Window>,
    /// Windows made so far (at most [`WINDOWS`]).
    made: usize,
}

impl Direct {
    /// A spare window: an idle one or a new one.
    fn spare(&mut self) -> Option<Window> {
        if let Some(window) = self.idle.pop() {
            return Some(window);
        }
        (self.made < WINDOWS).then(|| {
            self.made += 1;
            Window::new()
        })
    }
}

impl DirectWriter {
    /// A writer that appends at `offset` of the file at `path`, open as `file`. Blocks
    /// (it reads the block the offset falls in).
    pub(crate) fn new(file: Arc<File>, path: &Path, offset: u64) -> io::Result<Self> {
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        let mut writer = Self {
            file,
            direct: None,
            len: 0,
            pos: offset,
        };
        if let Some(direct) = direct {
            let files = Arc::new(Descriptors {
                direct,
                plain: writer.file.clone(),
                usable: AtomicBool::new(true),
            });
            let mut window = Window::new();
            // Start at the block the offset falls in, with its durable head carried.
            let carry = (offset % ALIGN as u64) as usize;
            writer.pos = offset - carry as u64;
            writer
                .file
                .read_exact_at(&mut window.bytes_mut()[..carry], writer.pos)?;
            writer.len = carry;
            writer.direct = Some(Direct {
                files,
                window,
                idle: Vec::new(),
                made: 1,
            });
        }
        Ok(writer)
    }

    /// True while writes bypass the page cache (tests say when only the fallback ran).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct
            .as_ref()
            .is_some_and(|d| d.files.usable.load(Ordering::Relaxed))
    }

    /// True when a window is free for [`DirectWriter::write`] to fill the current one:
    /// otherwise the caller first gives back a window whose write finished.
    pub(crate) fn has_spare(&self) -> bool {
        self.direct
            .as_ref()
            .is_none_or(|d| !d.idle.is_empty() || d.made < WINDOWS)
    }

    /// Returns a window whose write finished.
    pub(crate) fn give_back(&mut self, window: Window) {
        if let Some(direct) = self.direct.as_mut() {
            direct.idle.push(window);
        }
    }

    /// Forgets a window whose write failed (another may be made in its place).
    pub(crate) fn lost_window(&mut self) {
        if let Some(direct) = self.direct.as_mut() {
            direct.made -= 1;
        }
    }

    /// Writes `data` (at most [`WRITE_SIZE`] bytes) after what was written before.
    /// Gathered bytes stay in the window until it is full; a full window comes back as a
    /// write for the caller to run, and needs a spare window ([`DirectWriter::has_spare`])
    /// to go on in. Without direct writes the bytes go to the file at once (blocking).
    pub(crate) fn write(&mut self, mut data: &[u8]) -> io::Result<Option<WindowWrite>> {
        debug_assert!(data.len() <= WRITE_SIZE);
        let mut full = None;
        while !data.is_empty() {
            let Some(Direct { window, .. }) = self.direct.as_mut() else {
                self.file.write_all_at(data, self.pos)?;
                self.pos += data.len() as u64;
                return Ok(None);
            };
            let take = data.len().min(WRITE_SIZE - self.len);
            window.bytes_mut()[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len == WRITE_SIZE {
                if full.is_some() {
                    return Err(io::Error::other("more than one window filled in one write"));
                }
                full = Some(self.take_window(WRITE_SIZE)?);
            }
        }
        Ok(full)
    }

    /// Puts every byte written so far into the file: the whole blocks directly, the
    /// partly filled last block through the ordinary descriptor (a later direct write
    /// covers that block whole). Call at the end of a chunk, before the fsync, once
    /// every [`WindowWrite`] handed out is done and given back.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let whole = self.len - self.len % ALIGN;
        if whole > 0 {
            let write = self.take_window(whole)?;
            let window = write.run()?;
            self.give_back(window);
        }
        if let Some(Direct { window, .. }) = self.direct.as_ref()
            && self.len > 0
        {
            self.file
                .write_all_at(&window.bytes()[..self.len], self.pos)?;
        }
        Ok(())
    }

    /// Takes the window's first `n` bytes (a multiple of [`ALIGN`]) as a write at `pos`,
    /// and goes on in a spare window with the rest.
    fn take_window(&mut self, n: usize) -> io::Result<WindowWrite> {
        let Some(direct) = self.direct.as_mut() else {
            return Err(io::Error::other("no window without direct writes"));
        };
        let mut next = direct.spare().ok_or_else(|| {
            io::Error::other("no spare window: a window write was not given back")
        })?;
        let carry = self.len - n;
        next.bytes_mut()[..carry].copy_from_slice(&direct.window.bytes()[n..self.len]);
        let full = std::mem::replace(&mut direct.window, next);
        let write = WindowWrite {
            window: full,
            len: n,
            pos: self.pos,
            files: direct.files.clone(),
        };
        self.pos += n as u64;
        self.len = carry;
        Ok(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Writes `data` as a caller does: at most a window at a time, running each full
    /// window's write once the next one needs its window (so two may be pending).
    fn write_all(writer: &mut DirectWriter, data: &[u8], pending: &mut Vec<WindowWrite>) {
        for piece in data.chunks(WRITE_SIZE) {
            if !writer.has_spare() {
                let window = pending.remove(0).run().unwrap();
                writer.give_back(window);
            }
            if let Some(write) = writer.write(piece).unwrap() {
                pending.push(write);
            }
        }
    }

    /// Writes pieces of the given sizes, chunk by chunk as uploads do, on a file that
    /// already holds `offset` bytes, and checks the file holds exactly what was written;
    /// with `flush_each`, flushes after every piece and checks the file then too (a
    /// flush mid-window leaves the writer able to go on). Returns whether direct writes
    /// were used.
    fn write_in_chunks(offset: usize, chunks: &[&[usize]], flush_each: bool) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.part");
        let mut expected = bytes(offset, 7);
        std::fs::write(&path, &expected).unwrap();
        let mut direct_used = false;
        for (c, pieces) in chunks.iter().enumerate() {
            let file = OpenOptions::new()
                .write(true)
                .read(true)
                .open(&path)
                .unwrap();
            let file = Arc::new(file);
            let mut writer = DirectWriter::new(file.clone(), &path, expected.len() as u64).unwrap();
            let mut pending = Vec::new();
            for (p, &size) in pieces.iter().enumerate() {
                let piece = bytes(size, (c * 16 + p) as u8);
                write_all(&mut writer, &piece, &mut pending);
                expected.extend_from_slice(&piece);
                if flush_each {
                    for write in pending.drain(..) {
                        writer.give_back(write.run().unwrap());
                    }
                    writer.flush().unwrap();
                    assert_eq!(std::fs::read(&path).unwrap(), expected);
                }
            }
            for write in pending.drain(..) {
                writer.give_back(write.run().unwrap());
            }
            writer.flush().unwrap();
            direct_used |= writer.is_direct();
            file.sync_data().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        direct_used
    }

    const PIECES: &[&[usize]] = &[
        &[1, 4095, 3000],
        &[WRITE_SIZE + 17, 256 << 10],
        &[ALIGN],
        &[5],
    ];

    #[test]
    fn unaligned_chunks_land_byte_for_byte() {
        if !write_in_chunks(1000, PIECES, false) {
            eprintln!("notice: this file system refuses O_DIRECT; only the fallback ran");
        }
    }

    #[test]
    fn flushed_bytes_are_in_the_file_at_once() {
        write_in_chunks(1000, PIECES, true);
        write_in_chunks(0, &[&[3, ALIGN - 3, 7, 2 * ALIGN + 1]], true);
    }

    #[test]
    fn aligned_start_and_exact_window() {
        write_in_chunks(0, &[&[WRITE_SIZE], &[2 * WRITE_SIZE, ALIGN]], false);
        write_in_chunks(ALIGN, &[&[WRITE_SIZE - 1], &[1]], false);
    }

    #[test]
    fn a_writer_needs_a_window_back_before_a_third_fills() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.part");
        std::fs::write(&path, b"").unwrap();
        let file = Arc::new(
            OpenOptions::new()
                .write(true)
                .read(true)
                .open(&path)
                .unwrap(),
        );
        let mut writer = DirectWriter::new(file, &path, 0).unwrap();
        if writer.direct.is_none() {
            eprintln!("notice: this file system refuses O_DIRECT; nothing to check");
            return;
        }
        // The first window fills and goes out; the second is being filled.
        let first = writer.write(&bytes(WRITE_SIZE, 1)).unwrap().unwrap();
        assert!(!writer.has_spare(), "both windows are in use");
        assert!(
            writer.write(&bytes(WRITE_SIZE, 2)).is_err(),
            "no third window"
        );
        // A failed write loses its window; another may be made in its place.
        drop(first);
        writer.lost_window();
        assert!(writer.has_spare());
    }

    #[test]
    fn an_empty_chunk_changes_nothing() {
        write_in_chunks(123, &[&[], &[10], &[]], false);
    }
}
