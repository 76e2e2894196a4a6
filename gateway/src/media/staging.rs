//! Partial uploads: one staging file per recording on this gateway's disk, written in
//! 1 MiB pieces as bytes arrive and the rest at the end of each chunk (past the page
//! cache where the file system allows, see [`super::direct`]), hashed as they are
//! written, and fsync'd before an offset is reported.
//!
//! Durability rule: an offset the gateway reports (in any reply) is durable. The
//! staging file is fsync'd at the end of every chunk and whenever a chunk stops early,
//! before the new offset is reported or recorded in the store. After a restart the
//! file is cut back to the offset the store recorded (bytes past it were never
//! reported and may not have reached the disk intact), and the SHA-256 of what remains
//! is recomputed once, so verification stays incremental across restarts.
//!
//! One upload per recording at a time: [`Staging::acquire`] takes the recording's
//! slot and tells an earlier holder to stop (a device that reconnects has given up on
//! its old stream, which may still be waiting for bytes from a dead connection).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use prometheus::IntCounter;
use protocol::Sha256Hash;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedMutexGuard, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::MediaError;
use super::direct::DirectWriter;
use super::fsutil::{fsync_dir, io_error};

/// Bytes read from the stream per hand-over to the writer.
const BATCH: usize = 256 << 10;
/// Batches in flight between the stream reader and the file writer (bounds memory per
/// upload to about `BATCH × (QUEUE + 2)`, whatever the file size).
const QUEUE: usize = 4;

/// Where a chunk's bytes come from, in the pieces the transport already holds them in:
/// a QUIC stream hands out its received frames without copying them, so each byte is
/// copied once on its way to the file (into the direct writer's aligned window).
pub trait ChunkSource: Send {
    /// The next piece of at most `max` bytes; `None` once the stream has ended.
    fn next_piece(
        &mut self,
        max: usize,
    ) -> impl Future<Output = std::io::Result<Option<Bytes>>> + Send;
}

impl ChunkSource for quinn::RecvStream {
    async fn next_piece(&mut self, max: usize) -> std::io::Result<Option<Bytes>> {
        Ok(self.read_chunk(max, true).await?.map(|chunk| chunk.bytes))
    }
}

/// Bytes already in memory (a chunk replayed by tests and tools), in pieces of `max`.
impl ChunkSource for &[u8] {
    async fn next_piece(&mut self, max: usize) -> std::io::Result<Option<Bytes>> {
        if self.is_empty() {
            return Ok(None);
        }
        let (piece, rest) = self.split_at(max.min(self.len()));
        *self = rest;
        Ok(Some(Bytes::copy_from_slice(piece)))
    }
}

/// What the gateway remembers of a partial upload between chunks: no open file (an
/// abandoned upload must not hold a descriptor), only where it stands.
struct Partial {
    /// Bytes durable in the file; the next chunk starts here.
    offset: u64,
    /// SHA-256 state over bytes `[0, offset)`.
    hasher: Sha256,
}

type Slot = Arc<tokio::sync::Mutex<Option<Partial>>>;

/// The slots of recordings being uploaded, and who holds each (a number, so that a
/// holder only ever removes its own entry).
#[derive(Default)]
struct Slots {
    slots: HashMap<Uuid, Slot>,
    holders: HashMap<Uuid, (u64, CancellationToken)>,
    next_holder: u64,
}

/// The staging area of partial uploads.
pub struct Staging {
    dir: PathBuf,
    slots: Arc<Mutex<Slots>>,
}

/// Why [`UploadSlot::receive`] stopped before `length` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The stream ended or failed (the device went away).
    StreamEnded,
    /// Another upload of the same recording took over, or the gateway is stopping.
    Cancelled,
    /// No byte arrived for the stall timeout.
    Stalled,
}

/// How a chunk ended; in every case the returned offset is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// All `length` bytes are durable.
    Complete {
        /// The new offset.
        offset: u64,
    },
    /// Some bytes are durable; the chunk stopped early.
    Stopped {
        /// The new offset.
        offset: u64,
        /// Why.
        why: Stop,
    },
}

impl Staging {
    /// A staging area in `dir` (created if missing).
    pub fn open(dir: PathBuf) -> Result<Self, MediaError> {
        durable::files::private_dir(&dir)
            .map_err(|e| io_error("create the staging folder", &dir, e))?;
        Ok(Self {
            dir,
            slots: Arc::default(),
        })
    }

    /// The staging file of a recording.
    pub fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    /// Takes the recording's slot, first telling any earlier holder to stop. The
    /// returned slot's [`UploadSlot::stop_token`] is cancelled if a later upload of the
    /// same recording takes over.
    pub async fn acquire(&self, id: Uuid) -> UploadSlot {
        let token = CancellationToken::new();
        let (holder, slot) = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.next_holder += 1;
            let holder = slots.next_holder;
            if let Some((_, earlier)) = slots.holders.insert(id, (holder, token.clone())) {
                earlier.cancel();
            }
            (holder, slots.slots.entry(id).or_default().clone())
        };
        let guard = slot.lock_owned().await;
        UploadSlot {
            id,
            path: self.path(id),
            dir: self.dir.clone(),
            guard: Some(guard),
            token,
            holder,
            slots: self.slots.clone(),
        }
    }
}

/// Exclusive access to one recording's partial upload.
pub struct UploadSlot {
    id: Uuid,
    path: PathBuf,
    dir: PathBuf,
    /// Always `Some` until dropped.
    guard: Option<OwnedMutexGuard<Option<Partial>>>,
    token: CancellationToken,
    holder: u64,
    slots: Arc<Mutex<Slots>>,
}

impl Drop for UploadSlot {
    /// Gives the slot up; forgets it entirely when nobody else wants it and no partial
    /// upload is remembered, so the table does not grow with every recording ever seen.
    fn drop(&mut self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots
            .holders
            .get(&self.id)
            .is_some_and(|(h, _)| *h == self.holder)
        {
            slots.holders.remove(&self.id);
        }
        let idle = self.guard.as_ref().is_some_and(|g| g.is_none());
        drop(self.guard.take());
        // Only the table's own reference is left: nobody is waiting for this slot, and
        // nobody can start to while we hold the table's lock.
        if idle
            && slots
                .slots
                .get(&self.id)
                .is_some_and(|slot| Arc::strong_count(slot) == 1)
        {
            slots.slots.remove(&self.id);
        }
    }
}

impl UploadSlot {
    fn partial(&self) -> &Option<Partial> {
        self.guard.as_ref().expect("held until dropped")
    }

    fn partial_mut(&mut self) -> &mut Option<Partial> {
        self.guard.as_mut().expect("held until dropped")
    }

    /// Cancelled when a later upload of the same recording takes over.
    pub fn stop_token(&self) -> &CancellationToken {
        &self.token
    }

    /// The staging file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durable offset. On first use after a start, opens the staging file, cuts it
    /// back to `recorded` (the offset the store recorded as durable) if it is longer,
    /// and rehashes what remains.
    pub async fn offset(&mut self, recorded: u64) -> Result<u64, MediaError> {
        if let Some(partial) = self.partial().as_ref() {
            return Ok(partial.offset);
        }
        let path = self.path.clone();
        let dir = self.dir.clone();
        let partial = tokio::task::spawn_blocking(move || load(&path, &dir, recorded))
            .await
            .map_err(|e| MediaError::Task(e.to_string()))??;
        let offset = partial.offset;
        *self.partial_mut() = Some(partial);
        Ok(offset)
    }

    /// Streams up to `length` bytes from `reader` into the staging file at the current
    /// offset (the caller checked that the chunk starts there), hashing them on the way,
    /// then fsyncs. Stops early (keeping what arrived, fsync'd) when the stream ends,
    /// when `stop` or this slot's token is cancelled, or when no byte arrives within
    /// `stall`. `streamed` counts the bytes as they are read: they are kept however the
    /// chunk ends (unless a write fails), but reach the file only in 1 MiB writes and at
    /// the chunk's end.
    ///
    /// A full disk is [`MediaError::StorageFull`]: the file is cut back to the last
    /// durable offset, so nothing acknowledged is lost and nothing unacknowledged is
    /// kept.
    pub async fn receive<R: ChunkSource>(
        &mut self,
        reader: &mut R,
        length: u64,
        stop: &CancellationToken,
        stall: Duration,
        streamed: &IntCounter,
    ) -> Result<Received, MediaError> {
        let partial = self
            .partial_mut()
            .take()
            .ok_or_else(|| MediaError::Task("offset() must be read before receive()".into()))?;
        let (tx, rx) = mpsc::channel::<Vec<Bytes>>(QUEUE);
        let path = self.path.clone();
        let writer = tokio::task::spawn_blocking(move || write_chunk(partial, rx, &path));
        // The stop signals and the stall timer are set up once per chunk, not once per
        // read: a read waits about once per QUIC packet, and registering two
        // cancellation waiters and a timer each time was a measurable share of an
        // upload's CPU. The timer is re-armed lazily, only when it fires after progress.
        let token = self.token.clone();
        let stopped = async {
            tokio::select! {
                () = token.cancelled() => {}
                () = stop.cancelled() => {}
            }
        };
        tokio::pin!(stopped);
        let mut last_byte = tokio::time::Instant::now();
        let stall_timer = tokio::time::sleep_until(last_byte + stall);
        tokio::pin!(stall_timer);
        let mut remaining = length;
        let mut why = None;
        while remaining > 0 && why.is_none() {
            // Gather a whole batch before handing it to the writer: one wake-up of the
            // writer's thread per 256 KiB, however small the pieces (a QUIC frame is
            // about a packet's worth). Pieces that are ready are taken at once; only a
            // read that must wait, and the first of each batch, also watch for
            // cancellation. What arrived is handed over even when the read stops.
            let want = usize::try_from(remaining.min(BATCH as u64)).unwrap_or(BATCH);
            let mut batch = Vec::new();
            let mut gathered = 0;
            while gathered < want && why.is_none() {
                let max = want - gathered;
                let ready = if batch.is_empty() {
                    None
                } else {
                    reader.next_piece(max).now_or_never()
                };
                let read = match ready {
                    Some(read) => read,
                    None => tokio::select! {
                        biased;
                        () = &mut stopped => { why = Some(Stop::Cancelled); break; }
                        () = &mut stall_timer => {
                            if last_byte.elapsed() >= stall {
                                why = Some(Stop::Stalled);
                                break;
                            }
                            stall_timer.as_mut().reset(last_byte + stall);
                            continue;
                        }
                        read = reader.next_piece(max) => {
                            // Pieces taken without waiting follow this one at once.
                            last_byte = tokio::time::Instant::now();
                            read
                        }
                    },
                };
                match read {
                    Err(_) | Ok(None) => why = Some(Stop::StreamEnded),
                    Ok(Some(piece)) => {
                        gathered += piece.len();
                        streamed.inc_by(piece.len() as u64);
                        batch.push(piece);
                    }
                }
            }
            remaining -= gathered as u64;
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                // The writer stopped (a write failed); its result says why.
                break;
            }
        }
        drop(tx);
        let (partial, result) = writer.await.map_err(|e| MediaError::Task(e.to_string()))?;
        let offset = partial.as_ref().map(|p| p.offset);
        *self.partial_mut() = partial;
        result?;
        let offset = offset.ok_or_else(|| MediaError::Task("partial lost".into()))?;
        Ok(match why {
            None => Received::Complete { offset },
            Some(why) => Received::Stopped { offset, why },
        })
    }

    /// The SHA-256 of the durable bytes (the whole file once the offset equals its
    /// size).
    pub fn digest(&self) -> Option<Sha256Hash> {
        self.partial()
            .as_ref()
            .map(|p| Sha256Hash(p.hasher.clone().finalize().into()))
    }

    /// Forgets the in-memory state (the file was moved away or is to be dropped).
    pub fn release(&mut self) {
        *self.partial_mut() = None;
    }

    /// Drops the partial upload and its file.
    pub async fn discard(&mut self) -> Result<(), MediaError> {
        *self.partial_mut() = None;
        match tokio::fs::remove_file(&self.path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove a staging file", &self.path, e)),
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || fsync_dir(&dir))
            .await
            .map_err(|e| MediaError::Task(e.to_string()))?
    }

    /// The recording this slot is for.
    pub fn recording_id(&self) -> Uuid {
        self.id
    }
}

/// Opens a staging file, cuts it back to `recorded` if longer, and hashes it.
fn load(path: &Path, dir: &Path, recorded: u64) -> Result<Partial, MediaError> {
    let existed = path.exists();
    let mut file = durable::files::private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error("open a staging file", path, e))?;
    if !existed {
        fsync_dir(dir)?;
    }
    let len = file
        .metadata()
        .map_err(|e| io_error("read a staging file's size", path, e))?
        .len();
    let offset = len.min(recorded);
    if len > offset {
        file.set_len(offset)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("cut back a staging file", path, e))?;
    }
    let mut hasher = Sha256::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_error("read a staging file", path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = offset;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        file.read_exact(&mut buf[..want])
            .map_err(|e| io_error("read a staging file", path, e))?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(Partial { offset, hasher })
}

/// The blocking side of a chunk: write and hash each buffer, then fsync. On failure the
/// file is cut back to the chunk's start (the last durable offset) and the hash state
/// restored, so the partial stays consistent; if even that fails the partial is
/// dropped from memory and reloaded from disk next time.
fn write_chunk(
    mut partial: Partial,
    mut rx: mpsc::Receiver<Vec<Bytes>>,
    path: &Path,
) -> (Option<Partial>, Result<(), MediaError>) {
    let start = partial.offset;
    let start_hash = partial.hasher.clone();
    let mut written = 0u64;
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        // The file is gone: forget the partial; the next request reloads from disk.
        Err(e) => return (None, Err(io_error("open a staging file", path, e))),
    };
    let result = (|| {
        let write_error = |e| io_error("write a staging file", path, e);
        let mut writer = DirectWriter::new(&file, path, start).map_err(write_error)?;
        while let Some(batch) = rx.blocking_recv() {
            for piece in &batch {
                writer.write(piece).map_err(write_error)?;
                partial.hasher.update(piece);
                written += piece.len() as u64;
            }
        }
        writer.flush().map_err(write_error)?;
        file.sync_data()
            .map_err(|e| io_error("fsync a staging file", path, e))
    })();
    match result {
        Ok(()) => {
            partial.offset = start + written;
            (Some(partial), Ok(()))
        }
        Err(err) => {
            drop(rx);
            let full = matches!(err, MediaError::StorageFull { .. });
            let rolled_back = file.set_len(start).and_then(|()| file.sync_all());
            let err = if full {
                MediaError::StorageFull { offset: start }
            } else {
                err
            };
            match rolled_back {
                Ok(()) => {
                    partial.offset = start;
                    partial.hasher = start_hash;
                    (Some(partial), Err(err))
                }
                Err(_) => (None, Err(err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(5);

    fn counter() -> IntCounter {
        IntCounter::new("streamed", "bytes streamed").unwrap()
    }

    fn staging() -> (tempfile::TempDir, Staging) {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path().join("staging")).unwrap();
        (dir, staging)
    }

    #[tokio::test]
    async fn bytes_are_hashed_as_written_and_resume_from_the_recorded_offset() {
        let (_dir, staging) = staging();
        let id = Uuid::new_v4();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let never = CancellationToken::new();
        let streamed = counter();
        {
            let mut slot = staging.acquire(id).await;
            assert_eq!(slot.offset(0).await.unwrap(), 0);
            let mut first = &bytes[..100_000];
            let got = slot
                .receive(&mut first, 100_000, &never, STALL, &streamed)
                .await
                .unwrap();
            assert_eq!(got, Received::Complete { offset: 100_000 });
            // The stream ends early: what arrived is kept.
            let mut short = &bytes[100_000..150_000];
            let got = slot
                .receive(&mut short, 200_000, &never, STALL, &streamed)
                .await
                .unwrap();
            assert_eq!(
                got,
                Received::Stopped {
                    offset: 150_000,
                    why: Stop::StreamEnded
                }
            );
        }
        // A fresh process (a new staging area) trusts only the recorded offset.
        let restarted = Staging::open(staging.dir.clone()).unwrap();
        let mut slot = restarted.acquire(id).await;
        assert_eq!(slot.offset(100_000).await.unwrap(), 100_000);
        let mut rest = &bytes[100_000..];
        let got = slot
            .receive(&mut rest, 200_000, &never, STALL, &streamed)
            .await
            .unwrap();
        assert_eq!(got, Received::Complete { offset: 300_000 });
        // Every byte read counts, also the 50,000 that the restart cut away.
        assert_eq!(streamed.get(), 350_000);
        assert_eq!(slot.digest(), Some(Sha256Hash::of(&bytes)));
        assert_eq!(std::fs::read(slot.path()).unwrap(), bytes);
    }

    /// A stream that gives `pieces` pieces of 100 bytes, `gap` apart, then waits for ever.
    struct Trickle {
        pieces: usize,
        gap: Duration,
    }

    impl ChunkSource for Trickle {
        async fn next_piece(&mut self, _max: usize) -> std::io::Result<Option<Bytes>> {
            if self.pieces == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.gap).await;
            self.pieces -= 1;
            Ok(Some(Bytes::from_static(&[7; 100])))
        }
    }

    #[tokio::test]
    async fn a_stall_counts_from_the_last_byte_not_from_the_chunks_start() {
        let (_dir, staging) = staging();
        let mut slot = staging.acquire(Uuid::new_v4()).await;
        slot.offset(0).await.unwrap();
        let never = CancellationToken::new();
        let stall = Duration::from_secs(1);
        // Bytes keep coming for well over the stall timeout, never a second apart:
        // not a stall. Then nothing comes: a stall, with every byte kept.
        let mut source = Trickle {
            pieces: 400,
            gap: Duration::from_millis(4),
        };
        let started = std::time::Instant::now();
        let got = slot
            .receive(&mut source, 1 << 20, &never, stall, &counter())
            .await
            .unwrap();
        assert!(
            started.elapsed() > 2 * stall,
            "the trickle outlasted the timeout"
        );
        assert_eq!(
            got,
            Received::Stopped {
                offset: 40_000,
                why: Stop::Stalled
            }
        );
    }

    #[tokio::test]
    async fn a_later_upload_takes_over_and_idle_slots_are_forgotten() {
        let (_dir, staging) = staging();
        let id = Uuid::new_v4();
        let first = staging.acquire(id).await;
        assert!(!first.stop_token().is_cancelled());
        let second = {
            let fut = staging.acquire(id);
            tokio::pin!(fut);
            // The newcomer tells the holder to stop, then waits for the slot.
            assert!(futures::poll!(&mut fut).is_pending());
            assert!(first.stop_token().is_cancelled());
            drop(first);
            // The newcomer still wants the slot: it is not forgotten.
            assert_eq!(staging.slots.lock().unwrap().slots.len(), 1);
            fut.await
        };
        assert!(!second.stop_token().is_cancelled());
        drop(second);
        let slots = staging.slots.lock().unwrap();
        assert!(
            slots.slots.is_empty() && slots.holders.is_empty(),
            "nothing left behind"
        );
    }
}
