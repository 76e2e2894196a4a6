//! The media store: where recordings' bytes go (DOMAIN R2, ARCHITECTURE "Data and
//! durability").
//!
//! Bytes arrive into a staging file on this gateway's disk ([`staging`]), hashed as
//! they are written and fsync'd before any offset is reported. When the last byte is
//! in, the SHA-256 is checked; a wrong hash drops the file. A verified file is then
//! made durable in a content-addressed store, either the local file system ([`fs`]:
//! rename + fsync of the folder) or an S3-compatible bucket ([`s3`]), chosen in
//! configuration. Only after that does the caller commit the store row and tell the
//! device "stored".
//!
//! A crate of its own below the gateway: it knows files, buckets and hashes, never the
//! gateway's state, store or clock (its one periodic task, removing abandoned staging
//! files, is driven by the gateway's `jobs::staging_sweep`).

mod caps;
mod chunk;
mod direct;
pub mod fs;
mod fsutil;
pub mod owner;
mod pace;
mod pool;
pub mod s3;
mod settings;
pub mod staging;
mod sweep;

use std::path::{Path, PathBuf};

use protocol::Sha256Hash;
use uuid::Uuid;

pub use caps::{UploadCap, UploadCaps, UploadPermit};
pub use pace::Pace;
pub use pool::WriterPool;
pub use settings::MediaSettings;
pub use staging::{ChunkSource, Received, Staging, UploadSlot};

/// Why [`UploadSlot::receive`] stopped before `length` bytes (the staging writer's
/// answer, and the pace check's when a chunk stalls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The stream ended or failed (the device went away).
    StreamEnded,
    /// Another upload of the same recording took over, or the gateway is stopping.
    Cancelled,
    /// Bytes came slower than the chunk's [`Pace`] (or not at all) for a period.
    Stalled,
}

/// A recording made durable in the media store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Its storage key.
    pub key: String,
    /// How long reading the staged file back and checking it took (a cost every
    /// upload pays for "what is published is checked on disk"; on `/metrics`).
    pub read_back: std::time::Duration,
}

/// Why the media store failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The disk (or quota) is full. Bytes up to `offset` of the upload are durable;
    /// nothing acknowledged was lost.
    #[error("the gateway's media storage is full; {offset} bytes of this upload are held")]
    StorageFull {
        /// The durable offset of the upload.
        offset: u64,
    },
    /// The bytes do not have the announced SHA-256; the partial file was dropped.
    #[error(
        "the uploaded bytes have SHA-256 {actual}, not the announced {expected}; they were dropped"
    )]
    HashMismatch {
        /// As announced.
        expected: Sha256Hash,
        /// As received.
        actual: Sha256Hash,
    },
    /// A write, fsync or rename failed: what it wrote may not be on disk whatever a
    /// later call says, so the media store stops acknowledging (the gateway's
    /// `faults` module).
    #[error("cannot {what} ({path}): {source}")]
    Durability {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The staged file on disk is not what was received and fsync'd (the disk lost or
    /// changed bytes, or another process wrote it); it was dropped, nothing published.
    #[error(
        "the staged copy on disk ({on_disk} bytes, SHA-256 {actual}) is not what was received ({size} bytes, SHA-256 {expected}); it was dropped"
    )]
    StagedDiffers {
        /// Bytes received.
        size: u64,
        /// Bytes on disk.
        on_disk: u64,
        /// The verified hash of what was received.
        expected: Sha256Hash,
        /// The hash of what is on disk.
        actual: Sha256Hash,
    },
    /// Another process holds this gateway's staging folder.
    #[error(
        "the staging folder {dir} is held by another gateway process: each gateway needs a data folder of its own (a copied data folder carries the same gateway id: remove its gateway.id)"
    )]
    StagingInUse {
        /// The folder.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("object store: {0}")]
    ObjectStore(#[source] object_store::Error),
    /// The object store accepted an upload but does not show it.
    #[error("object store did not keep the upload: {0}")]
    NotDurable(String),
    /// A background task failed.
    #[error("media task: {0}")]
    Task(String),
}

enum Blobs {
    Fs(fs::FsBlobs),
    S3(s3::S3Blobs),
}

/// Staging plus the content-addressed store chosen in configuration.
pub struct MediaStore {
    staging: Staging,
    blobs: Blobs,
    /// Chunks in flight, gateway-wide and per device.
    pub caps: UploadCaps,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// The backend-neutral key of stored content: `sha256/<hex>`.
pub fn storage_key(sha256: &Sha256Hash) -> String {
    format!("sha256/{}", sha256.to_hex())
}

impl MediaStore {
    /// Opens the media store of a gateway whose data folder is `data_dir`: its staging
    /// folder is `<media>/staging/<gateway id>/`, held by this process (see
    /// [`owner`]).
    pub fn open(settings: &MediaSettings, data_dir: &Path) -> Result<Self, MediaError> {
        let dir = settings.dir(data_dir);
        let pool = WriterPool::new(settings.writer_threads as usize);
        let id = owner::gateway_id(data_dir)?;
        let staging = Staging::open(dir.join("staging").join(id), pool)?;
        let blobs = match settings.backend.as_str() {
            "s3" => Blobs::S3(s3::S3Blobs::open(settings)?),
            _ => Blobs::Fs(fs::FsBlobs::open(dir)?),
        };
        let caps = UploadCaps::new(
            settings.max_uploads_in_flight,
            settings.max_uploads_per_device,
        );
        Ok(Self {
            staging,
            blobs,
            caps,
        })
    }

    /// `fs` or `s3`.
    pub fn backend(&self) -> &'static str {
        match self.blobs {
            Blobs::Fs(_) => "fs",
            Blobs::S3(_) => "s3",
        }
    }

    /// Takes a recording's upload slot (see [`Staging::acquire`]).
    pub async fn acquire(&self, id: Uuid) -> UploadSlot {
        self.staging.acquire(id).await
    }

    /// Gives up the staging folder (at shutdown, once no upload runs).
    pub fn unlock(&self) {
        self.staging.unlock();
    }

    /// Checks a complete staging file against the announced hash, then reads it back
    /// and checks its size and hash on disk, and makes it durable in the
    /// content-addressed store; returns its storage key and how long the read-back
    /// took. A wrong hash drops the staging file and is [`MediaError::HashMismatch`]; a
    /// staged file that differs on disk is dropped too and is
    /// [`MediaError::StagedDiffers`].
    pub async fn publish(
        &self,
        slot: &mut UploadSlot,
        expected: Sha256Hash,
        size: u64,
    ) -> Result<Published, MediaError> {
        let actual = slot
            .digest()
            .ok_or_else(|| MediaError::Task("no partial upload to publish".into()))?;
        if actual != expected {
            slot.discard().await?;
            return Err(MediaError::HashMismatch { expected, actual });
        }
        let reading = std::time::Instant::now();
        if let Err(e) = slot.verify_on_disk(expected, size).await {
            if matches!(e, MediaError::StagedDiffers { .. }) {
                slot.discard().await?;
            }
            return Err(e);
        }
        let read_back = reading.elapsed();
        let staged = slot.path().to_owned();
        match &self.blobs {
            Blobs::Fs(fs) => {
                let blobs = fs.clone();
                tokio::task::spawn_blocking(move || blobs.publish(&staged, &expected, size))
                    .await
                    .map_err(|e| MediaError::Task(e.to_string()))??;
                slot.release();
            }
            Blobs::S3(s3) => {
                s3.publish(&staged, &expected, size).await?;
                slot.discard().await?;
            }
        }
        Ok(Published {
            key: storage_key(&expected),
            read_back,
        })
    }

    /// The storage key of this content if the store holds it with this size: a
    /// recording whose bytes became durable before a crash is found here.
    pub async fn holds(
        &self,
        sha256: &Sha256Hash,
        size: u64,
    ) -> Result<Option<String>, MediaError> {
        let held = match &self.blobs {
            Blobs::Fs(fs) => fs.holds(sha256, size)?,
            Blobs::S3(s3) => s3.holds(sha256, size).await?,
        };
        Ok(held.then(|| storage_key(sha256)))
    }

    /// Reads stored content back and returns its SHA-256 (to check what is kept).
    pub async fn digest(&self, sha256: &Sha256Hash) -> Result<Sha256Hash, MediaError> {
        match &self.blobs {
            Blobs::Fs(fs) => {
                let path = fs.path_of(sha256);
                tokio::task::spawn_blocking(move || {
                    use sha2::Digest;
                    use std::io::Read;
                    let mut file = std::fs::File::open(&path)
                        .map_err(|e| fsutil::io_error("open a recording", &path, e))?;
                    let mut hasher = sha2::Sha256::new();
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = file
                            .read(&mut buf)
                            .map_err(|e| fsutil::io_error("read a recording", &path, e))?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                    }
                    Ok(Sha256Hash(hasher.finalize().into()))
                })
                .await
                .map_err(|e| MediaError::Task(e.to_string()))?
            }
            Blobs::S3(s3) => s3.digest(sha256).await,
        }
    }

    /// Where the local file system backend keeps this content (`None` with S3).
    pub fn local_path(&self, sha256: &Sha256Hash) -> Option<PathBuf> {
        match &self.blobs {
            Blobs::Fs(fs) => Some(fs.path_of(sha256)),
            Blobs::S3(_) => None,
        }
    }

    /// The staging file of a recording (on this gateway's disk).
    pub fn staging_path(&self, id: Uuid) -> PathBuf {
        self.staging.path(id)
    }
}
