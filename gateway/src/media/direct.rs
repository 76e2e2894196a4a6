//! Writing a staging file past the page cache (`O_DIRECT`).
//!
//! Why: a recording is written once and read back only if the gateway restarts
//! mid-upload, so caching it gains nothing, and on the virtual machines the gateway
//! runs on, copying every byte into freshly allocated page-cache pages was the largest
//! cost of an upload — 2.3 CPU-seconds per GiB written buffered against 0.2 direct
//! (`dd … bs=8M conv=fdatasync` against `oflag=direct`), on two cores that the QUIC
//! decryption and the SHA-256 also need. Direct writes must start at, and span,
//! multiples of [`ALIGN`] from a buffer aligned the same way, so the writer gathers
//! bytes in an aligned buffer, carries the partly written block a chunk starts in, and
//! writes the unaligned tail of a chunk through the ordinary descriptor. Where the file
//! system refuses `O_DIRECT` (tmpfs, some network file systems) every byte goes through
//! the ordinary descriptor instead: same result, more CPU. Durability is unchanged: the
//! caller still fsyncs before it reports an offset.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Offsets, lengths and buffer addresses of direct writes are multiples of this (the
/// largest logical block size in common use).
const ALIGN: usize = 4096;

/// Bytes gathered before one direct write.
const WRITE_SIZE: usize = 1 << 20;

/// Writes a byte stream into a file from a given offset, bypassing the page cache where
/// the file system allows it. Call [`DirectWriter::flush`] to put what is gathered into
/// the file; durability is the caller's fsync.
pub(crate) struct DirectWriter<'a> {
    /// The ordinary descriptor: the unaligned tail, the carried block, and everything
    /// when direct writes are unavailable.
    file: &'a File,
    /// The same file opened with `O_DIRECT`, while direct writes work.
    direct: Option<File>,
    /// Backing store; the aligned window is `buf[start..start + WRITE_SIZE]`.
    buf: Vec<u8>,
    start: usize,
    /// Bytes gathered in the window.
    len: usize,
    /// File offset of the window's first byte (a multiple of [`ALIGN`] while direct).
    pos: u64,
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
            buf: Vec::new(),
            start: 0,
            len: 0,
            pos: offset,
        };
        if let Some(direct) = direct {
            writer.buf = vec![0u8; WRITE_SIZE + ALIGN];
            writer.start = writer.buf.as_ptr().align_offset(ALIGN);
            // Start at the block the offset falls in, with its durable head carried.
            let carry = (offset % ALIGN as u64) as usize;
            writer.pos = offset - carry as u64;
            let window = writer.start..writer.start + carry;
            file.read_exact_at(&mut writer.buf[window], writer.pos)?;
            writer.len = carry;
            writer.direct = Some(direct);
        }
        Ok(writer)
    }

    /// True while writes bypass the page cache (tests say when only the fallback ran).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes `data` after what was written before (gathered until a window is full or
    /// [`DirectWriter::flush`] is called).
    pub(crate) fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.direct.is_none() {
                self.file.write_all_at(data, self.pos)?;
                self.pos += data.len() as u64;
                return Ok(());
            }
            let take = data.len().min(WRITE_SIZE - self.len);
            let at = self.start + self.len;
            self.buf[at..at + take].copy_from_slice(&data[..take]);
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
    /// covers that block whole). Call at the end of a chunk, before the fsync.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        let whole = self.len - self.len % ALIGN;
        if self.direct.is_some() && whole > 0 {
            self.write_window(whole)?;
        }
        if self.direct.is_some() && self.len > 0 {
            let tail = &self.buf[self.start..self.start + self.len];
            self.file.write_all_at(tail, self.pos)?;
        }
        Ok(())
    }

    /// Writes the window's first `n` bytes (a multiple of [`ALIGN`]) at `pos` and moves
    /// the rest to the window's start.
    fn write_window(&mut self, n: usize) -> io::Result<()> {
        let direct = self.direct.as_ref().expect("only called while direct");
        match direct.write_all_at(&self.buf[self.start..self.start + n], self.pos) {
            Ok(()) => {
                self.pos += n as u64;
                self.buf
                    .copy_within(self.start + n..self.start + self.len, self.start);
                self.len -= n;
            }
            // The file system took the descriptor but refuses direct writes: everything
            // gathered goes through the ordinary descriptor, and so does the rest.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::debug!("direct writes refused; writing through the page cache");
                let gathered = &self.buf[self.start..self.start + self.len];
                self.file.write_all_at(gathered, self.pos)?;
                self.pos += self.len as u64;
                self.len = 0;
                self.direct = None;
            }
            Err(e) => return Err(e),
        }
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
    fn an_empty_chunk_changes_nothing() {
        write_in_chunks(123, &[&[], &[10], &[]], false);
    }
}
