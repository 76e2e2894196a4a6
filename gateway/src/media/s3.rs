//! The S3-compatible store (the `object_store` crate): for several gateways sharing
//! one media store. A verified staging file is uploaded to `<prefix>sha256/<hex>`
//! (multipart above one part, so memory does not grow with the file), its size is
//! confirmed with a HEAD, and only then is the staging copy dropped.
//!
//! S3 has no rename and no fsync: a completed PUT is durable by the service's contract,
//! which is the S3 meaning of "fsync'd and renamed".

use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use protocol::Sha256Hash;
use tokio::io::AsyncReadExt;

use super::{MediaError, MediaSettings};

/// Bytes per multipart part (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Parts uploaded at once (bounds memory to about `PART × (PARALLEL + 1)`).
const PARALLEL: usize = 2;

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
            .with_allow_http(settings.s3_allow_http);
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
            let upload = self
                .store
                .put_multipart(&location)
                .await
                .map_err(MediaError::ObjectStore)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| super::fsutil::io_error("read a staged recording", staged, e))?;
                if n == 0 {
                    break;
                }
                writer
                    .wait_for_capacity(PARALLEL)
                    .await
                    .map_err(MediaError::ObjectStore)?;
                writer.write(&buf[..n]);
            }
            writer.finish().await.map_err(MediaError::ObjectStore)?;
        }
        if !self.holds(sha256, size).await? {
            return Err(MediaError::NotDurable(format!(
                "{location} is missing or has the wrong size after the upload"
            )));
        }
        Ok(())
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
