//! One chunk's way into its staging file: batches of bytes are hashed into the direct
//! writer's windows and full windows written, each as a job on the [`WriterPool`];
//! at the chunk's end the rest is flushed and the file fsync'd. After a failure the
//! file is cut back to where the chunk started, so the partial upload stays what was
//! last reported durable.
//!
//! The async side holds the writer between jobs, so no thread waits for the device's
//! next bytes. [`ChunkWriter::ready`] is where an upload waits for room (the file to
//! be opened, the previous batch's job, a window whose write must finish, a pool
//! permit); it is cancel-safe, so the caller can stop waiting on the stall timer or a
//! takeover.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::{JoinError, JoinHandle};

use super::MediaError;
use super::direct::{DirectWriter, Window, WindowWrite};
use super::fsutil::{durability_error, io_error};
use super::pool::WriterPool;

/// What the gateway remembers of a partial upload between chunks: no open file (an
/// abandoned upload must not hold a descriptor), only where it stands.
pub(super) struct Partial {
    /// Bytes durable in the file; the next chunk starts here.
    pub(super) offset: u64,
    /// SHA-256 state over bytes `[0, offset)`.
    pub(super) hasher: Sha256,
}

/// The writer and hash state, which a batch job takes and gives back.
struct Writing {
    writer: DirectWriter,
    hasher: Sha256,
    /// Bytes handed to the writer in this chunk.
    written: u64,
}

type BatchDone = (Box<Writing>, io::Result<Option<WindowWrite>>);
type Opened = io::Result<(Arc<File>, DirectWriter)>;

/// One chunk being written.
pub(super) struct ChunkWriter {
    pool: WriterPool,
    path: PathBuf,
    /// The file (the writer holds it too), to fsync and to cut back; `None` until
    /// opened, or when it could not be.
    file: Option<Arc<File>>,
    /// The last durable offset and its hash state, to go back to after a failure.
    start: u64,
    start_hash: Sha256,
    /// True once the file was opened (or failed to open).
    opened: bool,
    /// The job opening the file.
    opening: Option<JoinHandle<Opened>>,
    /// The writer, once opened and unless a batch job holds it.
    state: Option<Box<Writing>>,
    /// The batch job in flight.
    batch: Option<JoinHandle<BatchDone>>,
    /// A full window waiting for a permit to be written.
    queued: Option<WindowWrite>,
    /// Window writes in flight, oldest first.
    windows: VecDeque<JoinHandle<io::Result<Window>>>,
    /// Room for the next batch job, taken by [`ChunkWriter::ready`].
    permit: Option<OwnedSemaphorePermit>,
    /// The first failure; the chunk is then rolled back.
    failed: Option<MediaError>,
}

fn task_error(e: &JoinError) -> MediaError {
    MediaError::Task(e.to_string())
}

impl ChunkWriter {
    /// A writer for a chunk that starts at the partial's offset. The file is opened
    /// by the first [`ChunkWriter::ready`].
    pub(super) fn new(partial: Partial, path: &Path, pool: &WriterPool) -> Self {
        Self {
            pool: pool.clone(),
            path: path.to_owned(),
            file: None,
            start: partial.offset,
            start_hash: partial.hasher,
            opened: false,
            opening: None,
            state: None,
            batch: None,
            queued: None,
            windows: VecDeque::new(),
            permit: None,
            failed: None,
        }
    }

    /// Opens the file (cancel-safe, like [`ChunkWriter::ready`]).
    async fn open(&mut self) {
        if self.opening.is_none() {
            let permit = self.pool.permit().await;
            let (at, start) = (self.path.clone(), self.start);
            self.opening = Some(WriterPool::spawn(permit, move || {
                let file = Arc::new(OpenOptions::new().read(true).write(true).open(&at)?);
                let writer = DirectWriter::new(file.clone(), &at, start)?;
                Ok((file, writer))
            }));
        }
        if let Some(opening) = self.opening.as_mut() {
            let done = opening.await;
            self.opening = None;
            self.opened_with(done);
        }
    }

    fn opened_with(&mut self, done: Result<Opened, JoinError>) {
        self.opened = true;
        match done {
            Ok(Ok((file, writer))) => {
                self.file = Some(file);
                self.state = Some(Box::new(Writing {
                    writer,
                    hasher: self.start_hash.clone(),
                    written: 0,
                }));
            }
            Ok(Err(e)) => self.fail(io_error("open a staging file", &self.path, e)),
            Err(e) => self.fail(task_error(&e)),
        }
    }

    /// Waits until the next batch can be handed over ([`ChunkWriter::submit`]): the
    /// previous batch is hashed, a window is free, and the pool has room. False once a
    /// write failed: the chunk is over and [`ChunkWriter::finish`] says why.
    /// Cancel-safe: stopping the wait loses nothing.
    pub(super) async fn ready(&mut self) -> bool {
        if !self.opened {
            self.open().await;
        }
        if let Some(batch) = self.batch.as_mut() {
            let done = batch.await;
            self.batch = None;
            self.batch_done(done);
        }
        if self.failed.is_some() {
            return false;
        }
        if self.queued.is_some() {
            let permit = self.pool.permit().await;
            if let Some(write) = self.queued.take() {
                self.windows
                    .push_back(WriterPool::spawn(permit, move || write.run()));
            }
        }
        while self.state.as_ref().is_some_and(|s| !s.writer.has_spare()) {
            let Some(oldest) = self.windows.front_mut() else {
                self.failed = Some(MediaError::Task("a window was never given back".into()));
                return false;
            };
            let done = oldest.await;
            self.windows.pop_front();
            if !self.window_done(done) {
                return false;
            }
        }
        if self.permit.is_none() {
            self.permit = Some(self.pool.permit().await);
        }
        true
    }

    /// Hands a batch (together smaller than a window) to a job that hashes it into
    /// the writer. Call after [`ChunkWriter::ready`] returned true.
    pub(super) fn submit(&mut self, batch: Vec<Bytes>) {
        let (Some(permit), Some(mut state)) = (self.permit.take(), self.state.take()) else {
            self.failed = Some(MediaError::Task("a batch came before ready()".into()));
            return;
        };
        self.batch = Some(WriterPool::spawn(permit, move || {
            let mut full = None;
            for piece in &batch {
                let written = durable::failpoint::io_point("staging.write")
                    .and_then(|()| state.writer.write(piece));
                match written {
                    Ok(None) => {}
                    // A batch is smaller than a window: it fills at most one.
                    Ok(Some(write)) => full = Some(write),
                    Err(e) => return (state, Err(e)),
                }
                state.hasher.update(piece);
                state.written += piece.len() as u64;
            }
            (state, Ok(full))
        }));
    }

    fn batch_done(&mut self, done: Result<BatchDone, JoinError>) {
        match done {
            Ok((state, result)) => {
                self.state = Some(state);
                match result {
                    Ok(full) => self.queued = full,
                    Err(e) => self.fail(durability_error("write a staging file", &self.path, e)),
                }
            }
            Err(e) => self.fail(task_error(&e)),
        }
    }

    fn window_done(&mut self, done: Result<io::Result<Window>, JoinError>) -> bool {
        let failure = match done {
            Ok(Ok(window)) => {
                if let Some(state) = self.state.as_mut() {
                    state.writer.give_back(window);
                }
                return true;
            }
            Ok(Err(e)) => durability_error("write a staging file", &self.path, e),
            Err(e) => task_error(&e),
        };
        if let Some(state) = self.state.as_mut() {
            state.writer.lost_window();
        }
        self.fail(failure);
        false
    }

    fn fail(&mut self, e: MediaError) {
        self.failed.get_or_insert(e);
    }

    /// Ends the chunk: waits for every job handed out (no write may land after this),
    /// flushes and fsyncs. Returns the partial upload as it now stands (`None` when it
    /// must be reloaded from disk) and whether the chunk's bytes are durable; after a
    /// failure the file is cut back to the chunk's start.
    pub(super) async fn finish(mut self) -> (Option<Partial>, Result<(), MediaError>) {
        if let Some(opening) = self.opening.take() {
            let done = opening.await;
            self.opened_with(done);
        }
        if !self.opened {
            // Nothing was written: the partial stands as it was.
            let partial = Partial {
                offset: self.start,
                hasher: self.start_hash,
            };
            return (Some(partial), Ok(()));
        }
        if let Some(batch) = self.batch.take() {
            let done = batch.await;
            self.batch_done(done);
        }
        if let Some(write) = self.queued.take()
            && self.failed.is_none()
        {
            let permit = self.pool.permit().await;
            self.windows
                .push_back(WriterPool::spawn(permit, move || write.run()));
        }
        while let Some(write) = self.windows.pop_front() {
            let done = write.await;
            self.window_done(done);
        }
        if self.failed.is_none()
            && let Some(state) = self.state.take()
        {
            match self.flush(state).await {
                Ok(partial) => return (Some(partial), Ok(())),
                Err(e) => self.fail(e),
            }
        }
        self.roll_back().await
    }

    async fn flush(&mut self, mut state: Box<Writing>) -> Result<Partial, MediaError> {
        let permit = self.permit.take();
        let permit = match permit {
            Some(permit) => permit,
            None => self.pool.permit().await,
        };
        let Some(file) = self.file.clone() else {
            return Err(MediaError::Task("flushed before opened".into()));
        };
        let path = self.path.clone();
        let flushed = WriterPool::spawn(permit, move || {
            state
                .writer
                .flush()
                .map_err(|e| durability_error("write a staging file", &path, e))?;
            durable::failpoint::crash_point("upload.chunk_written");
            durable::failpoint::io_point("staging.fsync")
                .and_then(|()| file.sync_data())
                .map_err(|e| durability_error("fsync a staging file", &path, e))?;
            Ok::<_, MediaError>(state)
        })
        .await
        .map_err(|e| task_error(&e))??;
        Ok(Partial {
            offset: self.start + flushed.written,
            hasher: flushed.hasher,
        })
    }

    /// Cuts the file back to the chunk's start and restores the hash state there; if
    /// even that fails the partial is forgotten and reloaded from disk next time.
    async fn roll_back(mut self) -> (Option<Partial>, Result<(), MediaError>) {
        drop(self.permit.take());
        let start = self.start;
        let err = match self.failed.take() {
            Some(MediaError::StorageFull { .. }) => MediaError::StorageFull { offset: start },
            Some(other) => other,
            None => MediaError::Task("a chunk failed without a cause".into()),
        };
        // The file could not be opened: the next request reloads it from disk.
        let Some(file) = self.file.clone() else {
            return (None, Err(err));
        };
        let permit = self.pool.permit().await;
        let cut = WriterPool::spawn(permit, move || {
            file.set_len(start).and_then(|()| file.sync_all())
        })
        .await;
        match cut {
            Ok(Ok(())) => (
                Some(Partial {
                    offset: start,
                    hasher: self.start_hash,
                }),
                Err(err),
            ),
            _ => (None, Err(err)),
        }
    }
}
