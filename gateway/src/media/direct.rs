//! Writing a staging file past the page cache (`O_DIRECT`), on a thread of its own.
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
//! Why a thread: a direct write blocks until the device has the bytes (about 0.8 ms per
//! MiB on the test machine, far longer on a slow disk). Done in line, that wait came on
//! top of the hashing: the staging writer was busy 23–27 ms of each 16 MiB chunk of a
//! single upload. Now a full window goes to the writer's own disk thread while the next
//! one fills and is hashed, and the writer is busy 14–21 ms per chunk; an upload is
//! limited by the slower of the disk and the SHA-256, not by their sum. Two windows per
//! upload bound the memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Offsets, lengths and buffer addresses of direct writes are multiples of this (the
/// largest logical block size in common use).
const ALIGN: usize = 4096;

/// Bytes gathered before one direct write.
const WRITE_SIZE: usize = 1 << 20;

/// Windows per writer: one fills while the other is being written.
const WINDOWS: usize = 2;

/// An aligned buffer of [`WRITE_SIZE`] bytes.
struct Window {
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

/// A write of a window's first `len` bytes at file offset `pos`.
struct Job {
    window: Window,
    len: usize,
    pos: u64,
}

/// The disk thread of one writer and the windows it does not hold.
struct Disk {
    /// `None` once the writer is dropped (the thread then ends).
    jobs: Option<mpsc::SyncSender<Job>>,
    /// Each job's window back, or why its write failed.
    done: mpsc::Receiver<io::Result<Window>>,
    thread: Option<JoinHandle<()>>,
    /// Windows neither being filled nor written.
    idle: Vec<Window>,
    /// Windows made so far (at most [`WINDOWS`]).
    made: usize,
    in_flight: usize,
}

impl Disk {
    /// Starts the thread; it writes through `direct` while the file system takes
    /// direct writes, else through `plain`.
    fn start(direct: File, plain: File) -> io::Result<Self> {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(WINDOWS);
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("staging-disk".into())
            .spawn(move || write_jobs(&direct, &plain, &job_rx, &done_tx))?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            idle: Vec::new(),
            made: 0,
            in_flight: 0,
        })
    }

    /// A window to fill: an idle one, a new one, or the next one written back (waiting
    /// for it; a failed write is reported here).
    fn window(&mut self) -> io::Result<Window> {
        if let Some(window) = self.idle.pop() {
            return Ok(window);
        }
        if self.made < WINDOWS {
            self.made += 1;
            return Ok(Window::new());
        }
        self.wait_one()
    }

    fn submit(&mut self, job: Job) -> io::Result<()> {
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => {
                self.in_flight += 1;
                Ok(())
            }
            _ => Err(io::Error::other("the staging disk thread stopped")),
        }
    }

    fn wait_one(&mut self) -> io::Result<Window> {
        let window = self
            .done
            .recv()
            .map_err(|_| io::Error::other("the staging disk thread stopped"))?;
        self.in_flight -= 1;
        if window.is_err() {
            // The failed job's window is gone with it; another may be made.
            self.made -= 1;
        }
        window
    }

    /// Waits until every submitted write is done; the first failure is the result.
    fn wait_all(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        while self.in_flight > 0 {
            match self.wait_one() {
                Ok(window) => self.idle.push(window),
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        result
    }
}

impl Drop for Disk {
    /// No write may land after the writer is gone (the caller may cut the file back),
    /// so the thread finishes what it was given and is joined.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The disk thread's loop: each job's window goes back once its bytes are written.
fn write_jobs(
    direct: &File,
    plain: &File,
    jobs: &mpsc::Receiver<Job>,
    done: &mpsc::Sender<io::Result<Window>>,
) {
    let mut use_direct = true;
    for job in jobs {
        let data = &job.window.bytes()[..job.len];
        let mut result = if use_direct {
            direct.write_all_at(data, job.pos)
        } else {
            plain.write_all_at(data, job.pos)
        };
        // The file system took the descriptor but refuses direct writes: this window
        // and every later one go through the ordinary descriptor.
        if use_direct && matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            tracing::debug!("direct writes refused; writing through the page cache");
            use_direct = false;
            result = plain.write_all_at(data, job.pos);
        }
        if done.send(result.map(|()| job.window)).is_err() {
            return;
        }
    }
}

/// Writes a byte stream into a file from a given offset, bypassing the page cache where
/// the file system allows it. Call [`DirectWriter::flush`] to put what is gathered into
/// the file; durability is the caller's fsync.
pub(crate) struct DirectWriter<'a> {
    /// The ordinary descriptor: the unaligned tail, the carried block, and everything
    /// when direct writes are unavailable.
    file: &'a File,
    /// The disk thread and the window being filled, while the file could be opened
    /// with `O_DIRECT`.
    direct: Option<Direct>,
    /// Bytes gathered in the window.
    len: usize,
    /// File offset of the window's first byte (a multiple of [`ALIGN`] while direct).
    pos: u64,
}

/// A direct writer's disk thread and the window it is filling.
struct Direct {
    disk: Disk,
    window: Window,
}

impl<'a> DirectWriter<'a> {
    /// A writer that appends at `offset` of the file at `path`, open as `file`.
    pub(crate) fn new(file: &'a File, path: &Path, offset: u64) -> io::Result<Self> {
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
            let mut disk = Disk::start(direct, file.try_clone()?)?;
            let mut window = disk.window()?;
            // Start at the block the offset falls in, with its durable head carried.
            let carry = (offset % ALIGN as u64) as usize;
            writer.pos = offset - carry as u64;
            file.read_exact_at(&mut window.bytes_mut()[..carry], writer.pos)?;
            writer.len = carry;
            writer.direct = Some(Direct { disk, window });
        }
        Ok(writer)
    }

    /// True while writes bypass the page cache (tests say when only the fallback ran).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes `data` after what was written before (gathered until a window is full or
    /// [`DirectWriter::flush`] is called). A failed write of an earlier window may be
    /// reported here.
    pub(crate) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some(Direct { window, .. }) = self.direct.as_mut() else {
                self.file.write_all_at(data, self.pos)?;
                self.pos += data.len() as u64;
                return Ok(());
            };
            let take = data.len().min(WRITE_SIZE - self.len);
            window.bytes_mut()[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len == WRITE_SIZE {
                self.write_window(WRITE_SIZE)?;
            }
        }
        Ok(())
    }

    /// Puts every byte written so far into the file: the whole blocks directly, the
    /// partly filled last block through the ordinary descriptor (a later direct write
    /// covers that block whole). Returns once every write is done. Call at the end of
    /// a chunk, before the fsync.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let whole = self.len - self.len % ALIGN;
        if whole > 0 {
            self.write_window(whole)?;
        }
        if let Some(Direct { disk, window }) = self.direct.as_mut() {
            disk.wait_all()?;
            if self.len > 0 {
                self.file
                    .write_all_at(&window.bytes()[..self.len], self.pos)?;
            }
        }
        Ok(())
    }

    /// Hands the window's first `n` bytes (a multiple of [`ALIGN`]) to the disk thread,
    /// to be written at `pos`, and goes on in the next window with the rest.
    fn write_window(&mut self, n: usize) -> io::Result<()> {
        let Some(Direct { disk, window }) = self.direct.as_mut() else {
            return Ok(());
        };
        let mut next = disk.window()?;
        let carry = self.len - n;
        next.bytes_mut()[..carry].copy_from_slice(&window.bytes()[n..self.len]);
        let full = std::mem::replace(window, next);
        disk.submit(Job {
            window: full,
            len: n,
            pos: self.pos,
        })?;
        self.pos += n as u64;
        self.len = carry;
        Ok(())
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
            let mut writer = DirectWriter::new(&file, &path, expected.len() as u64).unwrap();
            direct_used |= writer.is_direct();
            for (p, &size) in pieces.iter().enumerate() {
                let piece = bytes(size, (c * 16 + p) as u8);
                writer.write(&piece).unwrap();
                expected.extend_from_slice(&piece);
                if flush_each {
                    writer.flush().unwrap();
                    assert_eq!(std::fs::read(&path).unwrap(), expected);
                }
            }
            writer.flush().unwrap();
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
    fn a_failed_window_write_is_reported_and_the_thread_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"kept").unwrap();
        // A descriptor open for reading only: every write fails (EBADF).
        let read_only = File::open(&path).unwrap();
        let mut disk = Disk::start(read_only.try_clone().unwrap(), read_only).unwrap();
        for _ in 0..WINDOWS {
            let window = disk.window().unwrap();
            disk.submit(Job {
                window,
                len: ALIGN,
                pos: 0,
            })
            .unwrap();
        }
        // Every window is in flight: the next one waits for a write and gets its error.
        let err = disk.window().err().expect("the failed write is reported");
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        assert!(disk.wait_all().is_err(), "the other write failed too");
        // The lost windows are made again, and dropping joins the thread.
        disk.window().unwrap();
        disk.window().unwrap();
        drop(disk);
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }

    #[test]
    fn an_empty_chunk_changes_nothing() {
        write_in_chunks(123, &[&[], &[10], &[]], false);
    }
}
