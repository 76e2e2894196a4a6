//! The `[media]` configuration table: where recordings go, and the bounds on what
//! uploads may hold (threads, streams, staging bytes, time).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Pace;

/// The `[media]` configuration table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// `fs` (the local file system, the default) or `s3` (an S3-compatible bucket).
    pub backend: String,
    /// Folder for staging files (both backends) and, with `fs`, the stored
    /// recordings; empty means `<data_dir>/media`.
    pub dir: String,
    /// A chunk whose bytes stop arriving for this long is ended (what arrived is kept).
    pub stall_timeout_secs: u64,
    /// A chunk whose bytes come slower than this (per `stall_timeout_secs` period) is
    /// ended too: a trickle holds an upload's resources as long as a stall does.
    pub min_upload_bytes_per_sec: u64,
    /// Blocking jobs (hashing, writing, fsync) of all uploads at once.
    pub writer_threads: u32,
    /// Upload chunks being received at once, gateway-wide.
    pub max_uploads_in_flight: u32,
    /// Upload chunks being received at once from one device.
    pub max_uploads_per_device: u32,
    /// Recordings one device may have announced and not yet stored.
    pub max_pending_recordings_per_device: u32,
    /// Bytes one device's partial uploads may hold in staging.
    pub max_staging_bytes_per_device: u64,
    /// A staging file untouched for this long is removed (its upload restarts).
    pub staging_max_age_hours: u32,
    /// How often the staging folder is swept for such files.
    pub staging_sweep_secs: u64,
    /// S3 endpoint URL; empty means AWS.
    pub s3_endpoint: String,
    /// S3 bucket (required with `s3`).
    pub s3_bucket: String,
    /// S3 region.
    pub s3_region: String,
    /// Key prefix inside the bucket (for example `fieldsync/`).
    pub s3_prefix: String,
    /// Access key id; empty means the `AWS_*` environment variables.
    pub s3_access_key_id: String,
    /// Secret access key (with `s3_access_key_id`).
    pub s3_secret_access_key: String,
    /// Allow a plain-HTTP endpoint (a test server on loopback).
    pub s3_allow_http: bool,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            backend: "fs".into(),
            dir: String::new(),
            stall_timeout_secs: 60,
            min_upload_bytes_per_sec: 1024,
            writer_threads: 8,
            max_uploads_in_flight: 256,
            max_uploads_per_device: 2,
            max_pending_recordings_per_device: 1000,
            max_staging_bytes_per_device: 16 << 30,
            staging_max_age_hours: 168,
            staging_sweep_secs: 3600,
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_prefix: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
        }
    }
}

impl MediaSettings {
    /// Checks the settings; the error names the key (under `media.`) and the problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self.backend.as_str() {
            "fs" => {}
            "s3" => {
                if self.s3_bucket.trim().is_empty() {
                    return Err((
                        "media.s3_bucket",
                        "must be set when media.backend is \"s3\"".into(),
                    ));
                }
                if self.s3_endpoint.starts_with("http://") && !self.s3_allow_http {
                    return Err((
                        "media.s3_allow_http",
                        "must be true for a plain-HTTP media.s3_endpoint".into(),
                    ));
                }
                if self.s3_access_key_id.is_empty() != self.s3_secret_access_key.is_empty() {
                    return Err((
                        "media.s3_secret_access_key",
                        "set both media.s3_access_key_id and media.s3_secret_access_key, or neither".into(),
                    ));
                }
            }
            other => {
                return Err((
                    "media.backend",
                    format!("{other:?} is not a media backend; use \"fs\" or \"s3\""),
                ));
            }
        }
        if self.stall_timeout_secs == 0 {
            return Err(("media.stall_timeout_secs", "must be at least 1".into()));
        }
        if !(1..=256).contains(&self.writer_threads) {
            return Err(("media.writer_threads", "must be between 1 and 256".into()));
        }
        for (key, value) in [
            ("media.max_uploads_in_flight", self.max_uploads_in_flight),
            ("media.max_uploads_per_device", self.max_uploads_per_device),
            (
                "media.max_pending_recordings_per_device",
                self.max_pending_recordings_per_device,
            ),
            ("media.staging_max_age_hours", self.staging_max_age_hours),
        ] {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if self.staging_sweep_secs == 0 {
            return Err(("media.staging_sweep_secs", "must be at least 1".into()));
        }
        Ok(())
    }

    /// How fast a chunk's bytes must keep coming.
    pub fn pace(&self) -> Pace {
        Pace {
            period: std::time::Duration::from_secs(self.stall_timeout_secs),
            min_bytes_per_sec: self.min_upload_bytes_per_sec,
        }
    }

    /// The media folder.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        if self.dir.is_empty() {
            data_dir.join("media")
        } else {
            PathBuf::from(&self.dir)
        }
    }
}
