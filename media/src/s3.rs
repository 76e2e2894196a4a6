//! The S3-compatible store (the `object_store` crate): for several gateways sharing
//! one media store. A verified staging file is uploaded to `<prefix>sha256/<hex>`
//! (multipart above one part, so memory does not grow with the file), its size is
//! confirmed with a HEAD, and only then is the staging copy dropped.
//!
//! Every request that carries bytes carries their SHA-256 (`x-amz-checksum-sha256`):
//! a single PUT the whole recording's, each part of a multipart upload its own, and the
//! completion lists every part's, from which the service computes the object's. A
//! service that checks them refuses bytes changed on the way. A multipart upload that
//! fails is aborted, so no invisible parts stay behind in the bucket.
//!
//! S3 has no rename and no fsync: a completed PUT is durable by the service's contract,
//! which is the S3 meaning of "fsync'd and renamed".

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use protocol::Sha256Hash;
use tokio::io::AsyncReadExt;

use super::{MediaError, MediaSettings};

/// Bytes per multipart part (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Parts uploaded at once (bounds memory to about `PART × (PARALLEL + 1)`).
const PARALLEL: usize = 2;

/// Reads `file` part by part and hands each to `upload`, at most [`PARALLEL`] in
/// flight; the first failure stops it (the parts in flight are dropped).
async fn send_parts(
    upload: &mut dyn MultipartUpload,
    file: &mut tokio::fs::File,
    staged: &Path,
) -> Result<(), MediaError> {
    let mut in_flight: FuturesUnordered<object_store::UploadPart> = FuturesUnordered::new();
    loop {
        let mut part = Vec::with_capacity(PART);
        let read = (&mut *file)
            .take(PART as u64)
            .read_to_end(&mut part)
            .await
            .map_err(|e| super::fsutil::io_error("read a staged recording", staged, e))?;
        if read == 0 {
            break;
        }
        while in_flight.len() >= PARALLEL {
            if let Some(done) = in_flight.next().await {
                done.map_err(MediaError::ObjectStore)?;
            }
        }
        in_flight.push(upload.put_part(PutPayload::from(part)));
        if read < PART {
            break;
        }
    }
    while let Some(done) = in_flight.next().await {
        done.map_err(MediaError::ObjectStore)?;
    }
    Ok(())
}

/// Verified recordings in an S3-compatible bucket.
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3Blobs {
    /// Connects to the bucket named in the settings. Credentials come from the
    /// settings, or else from the usual `AWS_*` environment variables.
    pub fn open(settings: &MediaSettings) -> Result<Self, MediaError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.s3_bucket)
            .with_region(&settings.s3_region)
            .with_allow_http(settings.s3_allow_http)
            .with_checksum_algorithm(Checksum::SHA256);
        if !settings.s3_endpoint.is_empty() {
            builder = builder.with_endpoint(&settings.s3_endpoint);
        }
        if !settings.s3_access_key_id.is_empty() {
            builder = builder
                .with_access_key_id(&settings.s3_access_key_id)
                .with_secret_access_key(&settings.s3_secret_access_key);
        }
        let store = builder.build().map_err(MediaError::ObjectStore)?;
        Ok(Self {
            store: Arc::new(store),
            prefix: settings.s3_prefix.clone(),
        })
    }

    fn location(&self, sha256: &Sha256Hash) -> ObjectPath {
        ObjectPath::from(format!("{}sha256/{}", self.prefix, sha256.to_hex()))
    }

    /// Uploads a verified staging file unless the bucket already holds the content.
    pub async fn publish(
        &self,
        staged: &Path,
        sha256: &Sha256Hash,
        size: u64,
    ) -> Result<(), MediaError> {
        if self.holds(sha256, size).await? {
            return Ok(());
        }
        let location = self.location(sha256);
        let mut file = tokio::fs::File::open(staged)
            .await
            .map_err(|e| super::fsutil::io_error("open a staged recording", staged, e))?;
        if size <= PART as u64 {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(PART));
            file.read_to_end(&mut bytes)
                .await
                .map_err(|e| super::fsutil::io_error("read a staged recording", staged, e))?;
            self.store
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(MediaError::ObjectStore)?;
        } else {
            self.put_in_parts(&location, &mut file, staged).await?;
        }
        if !self.holds(sha256, size).await? {
            return Err(MediaError::NotDurable(format!(
                "{location} is missing or has the wrong size after the upload"
            )));
        }
        Ok(())
    }

    /// Uploads `file` in parts of [`PART`] bytes, [`PARALLEL`] at a time, each with
    /// its SHA-256; if any part or the completion fails, the upload is aborted.
    async fn put_in_parts(
        &self,
        location: &ObjectPath,
        file: &mut tokio::fs::File,
        staged: &Path,
    ) -> Result<(), MediaError> {
        let mut upload = self
            .store
            .put_multipart(location)
            .await
            .map_err(MediaError::ObjectStore)?;
        let sent = send_parts(upload.as_mut(), file, staged).await;
        let done = match sent {
            Ok(()) => upload
                .complete()
                .await
                .map(drop)
                .map_err(MediaError::ObjectStore),
            Err(e) => Err(e),
        };
        if let Err(e) = &done {
            match upload.abort().await {
                Ok(()) => {
                    tracing::warn!(%location, error = %e, "multipart upload failed and was aborted");
                }
                Err(abort) => tracing::error!(
                    %location, error = %e, abort = %abort,
                    "multipart upload failed and could not be aborted: its parts stay in the bucket until its lifecycle rule removes them"
                ),
            }
        }
        done
    }

    /// True when the bucket holds the content with this size.
    pub async fn holds(&self, sha256: &Sha256Hash, size: u64) -> Result<bool, MediaError> {
        match self.store.head(&self.location(sha256)).await {
            Ok(meta) => Ok(meta.size == size),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(MediaError::ObjectStore(e)),
        }
    }

    /// The SHA-256 of the stored object, read back in a stream.
    pub async fn digest(&self, sha256: &Sha256Hash) -> Result<Sha256Hash, MediaError> {
        use futures::StreamExt;
        use sha2::Digest;
        let mut stream = self
            .store
            .get(&self.location(sha256))
            .await
            .map_err(MediaError::ObjectStore)?
            .into_stream();
        let mut hasher = sha2::Sha256::new();
        while let Some(bytes) = stream.next().await {
            hasher.update(bytes.map_err(MediaError::ObjectStore)?);
        }
        Ok(Sha256Hash(hasher.finalize().into()))
    }
}
