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
//!
//! No thread waits on the network: a chunk's bytes are gathered here, on the request's
//! task, and handed in batches to jobs on the gateway-wide [`WriterPool`] (see
//! [`super::chunk`]). A chunk whose bytes come slower than its [`Pace`] allows, or
//! whose writer waits for room that long, ends with what arrived kept.
//!
//! One process per staging folder: [`Staging::open`] takes the folder's lock (see
//! [`super::owner`]), so no other process ever writes these files. Before a staged file
//! is published, [`UploadSlot::verify_on_disk`] reads it back and checks its size and
//! SHA-256 on disk, not only the hash of the bytes as they arrived: what is published
//! is what the disk holds.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::FutureExt;
use prometheus::IntCounter;
use protocol::Sha256Hash;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::chunk::{ChunkWriter, Partial};
use super::fsutil::{durability_error, fsync_dir, io_error};
use super::owner::StagingLock;
use super::pace::{Pace, Pacer};
use super::pool::WriterPool;
use super::{MediaError, Stop};

/// Bytes read from the stream per hand-over to the writer (smaller than a direct
/// writer's window, so one batch fills at most one). Memory per upload is about one
/// batch being gathered, one being hashed, and the writer's two 1 MiB windows.
const BATCH: usize = 256 << 10;

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
    pool: WriterPool,
    /// This process's hold on the folder (released at shutdown).
    lock: Mutex<Option<StagingLock>>,
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
    /// The staging area in `dir` (created if missing) whose chunks are written on
    /// `pool`, held by this process until [`Staging::unlock`];
    /// [`MediaError::StagingInUse`] if another process holds it.
    pub fn open(dir: PathBuf, pool: WriterPool) -> Result<Self, MediaError> {
        durable::files::private_dir(&dir)
            .map_err(|e| io_error("create the staging folder", &dir, e))?;
        let lock = StagingLock::take(&dir)?;
        Ok(Self {
            dir,
            slots: Arc::default(),
            pool,
            lock: Mutex::new(Some(lock)),
        })
    }

    /// Gives the folder up (at shutdown, once no upload runs), so that a new gateway in
    /// the same process can take it.
    pub fn unlock(&self) {
        self.lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
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
        self.slot(id, guard, token, holder)
    }

    /// Takes the recording's slot only if no upload holds or wants it (the staging
    /// sweep, which must never stop an upload).
    pub(super) fn try_acquire(&self, id: Uuid) -> Option<UploadSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.holders.contains_key(&id) {
            return None;
        }
        let guard = slots
            .slots
            .entry(id)
            .or_default()
            .clone()
            .try_lock_owned()
            .ok()?;
        slots.next_holder += 1;
        let holder = slots.next_holder;
        let token = CancellationToken::new();
        slots.holders.insert(id, (holder, token.clone()));
        drop(slots);
        Some(self.slot(id, guard, token, holder))
    }

    fn slot(
        &self,
        id: Uuid,
        guard: OwnedMutexGuard<Option<Partial>>,
        token: CancellationToken,
        holder: u64,
    ) -> UploadSlot {
        UploadSlot {
            id,
            path: self.path(id),
            dir: self.dir.clone(),
            guard: Some(guard),
            token,
            holder,
            slots: self.slots.clone(),
            pool: self.pool.clone(),
        }
    }

    /// The staging folder.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
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
    pool: WriterPool,
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
    /// when `stop` or this slot's token is cancelled, or when the bytes (or room in the
    /// writer) come slower than `pace` allows. `streamed` counts the bytes as they are
    /// read: they are kept however the chunk ends (unless a write fails), but reach the
    /// file only in 1 MiB writes and at the chunk's end.
    ///
    /// A full disk is [`MediaError::StorageFull`]: the file is cut back to the last
    /// durable offset, so nothing acknowledged is lost and nothing unacknowledged is
    /// kept.
    pub async fn receive<R: ChunkSource>(
        &mut self,
        reader: &mut R,
        length: u64,
        stop: &CancellationToken,
        pace: Pace,
        streamed: &IntCounter,
    ) -> Result<Received, MediaError> {
        let partial = self
            .partial_mut()
            .take()
            .ok_or_else(|| MediaError::Task("offset() must be read before receive()".into()))?;
        let mut writer = ChunkWriter::new(partial, &self.path, &self.pool);
        // The stop signals and the pace timer are set up once per chunk, not once per
        // read: a read waits about once per QUIC packet, and registering two
        // cancellation waiters and a timer each time was a measurable share of an
        // upload's CPU.
        let token = self.token.clone();
        let stopped = async {
            tokio::select! {
                () = token.cancelled() => {}
                () = stop.cancelled() => {}
            }
        };
        tokio::pin!(stopped);
        let mut pacer = Pacer::new(pace);
        let mut remaining = length;
        let mut why = None;
        while remaining > 0 && why.is_none() {
            // Room for the next batch first: a writer that cannot keep up stops the
            // reading (and the device, by QUIC flow control), and a wait as long as a
            // stall ends the chunk like one.
            match pacer.guard(writer.ready(), &mut stopped).await {
                Ok(true) => {}
                // A write failed: `finish` says why.
                Ok(false) => break,
                Err(stop) => {
                    why = Some(stop);
                    break;
                }
            }
            // Gather a whole batch before handing it over: one job per 256 KiB, however
            // small the pieces (a QUIC frame is about a packet's worth). Pieces that
            // are ready are taken at once; only a read that must wait also watches the
            // stop signals and the pace.
            let want = usize::try_from(remaining.min(BATCH as u64)).unwrap_or(BATCH);
            let mut batch = Vec::new();
            let mut gathered = 0;
            while gathered < want {
                let max = want - gathered;
                let ready = if batch.is_empty() {
                    None
                } else {
                    reader.next_piece(max).now_or_never()
                };
                let read = match ready {
                    Some(read) => read,
                    None => match pacer.guard(reader.next_piece(max), &mut stopped).await {
                        Ok(read) => read,
                        Err(stop) => {
                            why = Some(stop);
                            break;
                        }
                    },
                };
                match read {
                    Err(_) | Ok(None) => {
                        why = Some(Stop::StreamEnded);
                        break;
                    }
                    Ok(Some(piece)) => {
                        gathered += piece.len();
                        pacer.bytes += piece.len() as u64;
                        streamed.inc_by(piece.len() as u64);
                        batch.push(piece);
                    }
                }
            }
            remaining -= gathered as u64;
            // What arrived is handed over even when the read stopped.
            if !batch.is_empty() {
                writer.submit(batch);
            }
        }
        let (partial, result) = writer.finish().await;
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

    /// Reads the staged file back from disk and checks that it has `size` bytes with
    /// SHA-256 `expected` (the hash already verified on the bytes as they arrived).
    /// [`MediaError::StagedDiffers`] if not: the disk lost or changed bytes after they
    /// were written. Costs one read of the file (measured in docs/benchmarks.md).
    pub async fn verify_on_disk(&self, expected: Sha256Hash, size: u64) -> Result<(), MediaError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&path)
                .map_err(|e| io_error("open a staged recording", &path, e))?;
            let on_disk = file
                .metadata()
                .map_err(|e| io_error("read a staged recording's size", &path, e))?
                .len();
            let actual = Sha256Hash(hash_prefix(&mut file, on_disk, &path)?.finalize().into());
            if on_disk == size && actual == expected {
                Ok(())
            } else {
                Err(MediaError::StagedDiffers {
                    size,
                    on_disk,
                    expected,
                    actual,
                })
            }
        })
        .await
        .map_err(|e| MediaError::Task(e.to_string()))?
    }
}

/// The SHA-256 state over the first `len` bytes of `file`, read from its start.
fn hash_prefix(file: &mut std::fs::File, len: u64, path: &Path) -> Result<Sha256, MediaError> {
    let mut hasher = Sha256::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_error("read a staging file", path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        file.read_exact(&mut buf[..want])
            .map_err(|e| io_error("read a staging file", path, e))?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    Ok(hasher)
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
            .map_err(|e| durability_error("cut back a staging file", path, e))?;
    }
    let hasher = hash_prefix(&mut file, offset, path)?;
    Ok(Partial { offset, hasher })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PACE: Pace = Pace {
        period: Duration::from_secs(5),
        min_bytes_per_sec: 0,
    };

    fn counter() -> IntCounter {
        IntCounter::new("streamed", "bytes streamed").unwrap()
    }

    fn staging() -> (tempfile::TempDir, Staging) {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::open(dir.path().join("staging"), WriterPool::new(2)).unwrap();
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
                .receive(&mut first, 100_000, &never, PACE, &streamed)
                .await
                .unwrap();
            assert_eq!(got, Received::Complete { offset: 100_000 });
            // The stream ends early: what arrived is kept.
            let mut short = &bytes[100_000..150_000];
            let got = slot
                .receive(&mut short, 200_000, &never, PACE, &streamed)
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
        // A second holder of the folder is refused while the first holds it.
        assert!(matches!(
            Staging::open(staging.dir.clone(), WriterPool::new(2)),
            Err(MediaError::StagingInUse { .. })
        ));
        // A fresh process (a new staging area) trusts only the recorded offset.
        staging.unlock();
        let restarted = Staging::open(staging.dir.clone(), WriterPool::new(2)).unwrap();
        let mut slot = restarted.acquire(id).await;
        assert_eq!(slot.offset(100_000).await.unwrap(), 100_000);
        let mut rest = &bytes[100_000..];
        let got = slot
            .receive(&mut rest, 200_000, &never, PACE, &streamed)
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
    async fn a_stall_is_a_period_without_bytes_not_time_since_the_chunks_start() {
        let (_dir, staging) = staging();
        let mut slot = staging.acquire(Uuid::new_v4()).await;
        slot.offset(0).await.unwrap();
        let never = CancellationToken::new();
        let pace = Pace {
            period: Duration::from_secs(1),
            min_bytes_per_sec: 0,
        };
        // Bytes keep coming for well over the period, never a second apart: not a
        // stall. Then nothing comes: a stall, with every byte kept.
        let mut source = Trickle {
            pieces: 400,
            gap: Duration::from_millis(4),
        };
        let started = std::time::Instant::now();
        let got = slot
            .receive(&mut source, 1 << 20, &never, pace, &counter())
            .await
            .unwrap();
        assert!(
            started.elapsed() > 2 * pace.period,
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
    async fn bytes_slower_than_the_pace_are_a_stall() {
        let (_dir, staging) = staging();
        let mut slot = staging.acquire(Uuid::new_v4()).await;
        slot.offset(0).await.unwrap();
        // 100 bytes every 50 ms is 2,000 bytes a second; the pace asks for 5,000.
        let mut source = Trickle {
            pieces: usize::MAX,
            gap: Duration::from_millis(50),
        };
        let pace = Pace {
            period: Duration::from_secs(1),
            min_bytes_per_sec: 5_000,
        };
        let got = slot
            .receive(
                &mut source,
                1 << 20,
                &CancellationToken::new(),
                pace,
                &counter(),
            )
            .await
            .unwrap();
        let Received::Stopped { offset, why } = got else {
            panic!("a trickle completed a chunk: {got:?}");
        };
        assert_eq!(why, Stop::Stalled);
        assert!(
            offset > 0 && offset < 5_000,
            "what arrived is kept: {offset}"
        );
        assert_eq!(
            slot.digest(),
            Some(Sha256Hash::of(&vec![7; offset as usize]))
        );
    }

    #[tokio::test]
    async fn a_writer_waiting_for_room_ends_on_the_pace_and_on_takeover() {
        let dir = tempfile::tempdir().unwrap();
        let pool = WriterPool::new(1);
        let staging = Staging::open(dir.path().join("staging"), pool.clone()).unwrap();
        let id = Uuid::new_v4();
        let mut slot = staging.acquire(id).await;
        slot.offset(0).await.unwrap();
        // Every permit of the pool is taken (a disk that does not answer): the chunk
        // cannot even open its file.
        let busy = pool.permit().await;
        let pace = Pace {
            period: Duration::from_millis(300),
            min_bytes_per_sec: 0,
        };
        let bytes = vec![1u8; 1000];
        let never = CancellationToken::new();
        let got = slot
            .receive(&mut &bytes[..], 1000, &never, pace, &counter())
            .await
            .unwrap();
        assert_eq!(
            got,
            Received::Stopped {
                offset: 0,
                why: Stop::Stalled
            }
        );
        // A takeover ends the wait too, long before the pace would.
        let slow = Pace {
            period: Duration::from_secs(3600),
            min_bytes_per_sec: 0,
        };
        // (What a later upload's `acquire` does to this slot.)
        let taken_over = slot.stop_token().clone();
        let (mut source, streamed) = (&bytes[..], counter());
        let waiting = slot.receive(&mut source, 1000, &never, slow, &streamed);
        let takeover = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            taken_over.cancel();
        };
        let (got, ()) = tokio::join!(waiting, takeover);
        assert_eq!(
            got.unwrap(),
            Received::Stopped {
                offset: 0,
                why: Stop::Cancelled
            }
        );
        drop(busy);
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
