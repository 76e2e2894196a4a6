//! Free space of the gateway's folders (issue 20, point 2): measured every
//! `storage.check_secs`, on `/metrics`, and an alarm before a disk is full.
//!
//! Two levels, from configuration:
//!
//! - **The alarm.** While a folder's file system has less than
//!   `storage.alarm_free_percent` free, `/healthz` answers `degraded`, every dashboard
//!   page shows a banner, and an audit entry is written when the alarm is raised and
//!   when it clears. Nothing is refused.
//! - **The reserve.** A device write (a group of field records, a chunk of a recording)
//!   is refused with `StorageFull` while accepting it would leave less than
//!   `storage.reserve_bytes` free, so that the last of the disk stays for what must not
//!   fail when devices fill it: revocations and other operator changes, their audit
//!   entries, the database's own log. The device keeps its data and retries.
//!
//! A write that still finds the disk full (another program filled it) gets the same
//! typed refusal from SQLite or the file system; nothing acknowledged is lost, and
//! since every check is made afresh, everything resumes by itself when space returns.
//! The arithmetic ([`Space`], [`Level`]) is pure; [`StorageWatch`] measures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use prometheus::{IntGaugeVec, Opts};

use crate::config::StorageSettings;
use crate::faults::StorageFaults;
use crate::metrics::Metrics;

/// A folder the gateway writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Folder {
    /// The SQLite database's folder.
    Store,
    /// The media folder (staging and, with `fs`, the stored recordings).
    Media,
}

impl Folder {
    /// The `folder` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Store => "store",
            Folder::Media => "media",
        }
    }

    /// Its name for people (Chinese first).
    pub fn label(self) -> &'static str {
        match self {
            Folder::Store => "数据库目录 (store folder)",
            Folder::Media => "媒体目录 (media folder)",
        }
    }
}

/// Free and total bytes of a file system (what an unprivileged writer may use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Bytes free for the gateway.
    pub free: u64,
    /// Bytes in all.
    pub total: u64,
}

/// Where a folder stands against the alarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Enough free.
    Fine,
    /// Less than the alarm's share free.
    Alarm,
}

impl Space {
    /// Measures the file system holding `path`.
    pub fn of(path: &Path) -> std::io::Result<Space> {
        let st = rustix::fs::statvfs(path)?;
        Ok(Space {
            free: st.f_bavail.saturating_mul(st.f_frsize),
            total: st.f_blocks.saturating_mul(st.f_frsize),
        })
    }

    /// Against an alarm at `percent` free.
    pub fn level(self, percent: u8) -> Level {
        if u128::from(self.free) * 100 < u128::from(self.total) * u128::from(percent) {
            Level::Alarm
        } else {
            Level::Fine
        }
    }

    /// True when `need` more bytes leave at least `reserve` free.
    pub fn has_room(self, need: u64, reserve: u64) -> bool {
        self.free >= need.saturating_add(reserve)
    }

    /// The free share in whole percent (for people).
    pub fn free_percent(self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (u128::from(self.free) * 100 / u128::from(self.total)) as u64
        }
    }
}

/// A device write refused for want of room.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {} has {free} bytes free: {need} more bytes would leave less than the {reserve} kept for operators",
    folder.as_str()
)]
pub struct NoRoom {
    /// Which folder.
    pub folder: Folder,
    /// Bytes free now.
    pub free: u64,
    /// Bytes the write needs.
    pub need: u64,
    /// `storage.reserve_bytes`.
    pub reserve: u64,
}

/// An alarm raised or cleared by a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crossing {
    /// Which folder.
    pub folder: Folder,
    /// Raised (true) or cleared.
    pub raised: bool,
    /// What was measured, for the audit entry.
    pub detail: String,
}

/// The watched folders, their gauges and the alarms standing now.
pub struct StorageWatch {
    settings: StorageSettings,
    folders: Vec<(Folder, PathBuf)>,
    alarms: Mutex<HashMap<Folder, String>>,
    free: IntGaugeVec,
    size: IntGaugeVec,
    alarm: IntGaugeVec,
}

impl std::fmt::Debug for StorageWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageWatch")
            .field("folders", &self.folders)
            .finish_non_exhaustive()
    }
}

impl StorageWatch {
    /// Watches `folders` (the store's only with SQLite: PostgreSQL's disk is the
    /// database server's), registering `fieldsync_storage_free_bytes`,
    /// `fieldsync_storage_size_bytes` and `fieldsync_storage_alarm` by `folder`.
    pub fn new(
        settings: StorageSettings,
        folders: Vec<(Folder, PathBuf)>,
        metrics: &Metrics,
    ) -> Self {
        let gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), &["folder"]).expect("valid metric");
            metrics.register(Box::new(g.clone()));
            g
        };
        Self {
            settings,
            folders,
            alarms: Mutex::default(),
            free: gauge(
                "fieldsync_storage_free_bytes",
                "Bytes free on the file system of a gateway folder",
            ),
            size: gauge(
                "fieldsync_storage_size_bytes",
                "Bytes in all on the file system of a gateway folder",
            ),
            alarm: gauge(
                "fieldsync_storage_alarm",
                "1 while a folder has less than storage.alarm_free_percent free",
            ),
        }
    }

    /// `Err` when a device write of `need` bytes to `folder` would eat into the
    /// reserve. A folder not watched, or one that cannot be measured, has room (the
    /// write itself will say if it does not).
    pub fn room_for(&self, folder: Folder, need: u64) -> Result<(), NoRoom> {
        let Some((_, path)) = self.folders.iter().find(|(f, _)| *f == folder) else {
            return Ok(());
        };
        let Ok(space) = Space::of(path) else {
            return Ok(());
        };
        let reserve = self.settings.reserve_bytes;
        if space.has_room(need, reserve) {
            Ok(())
        } else {
            Err(NoRoom {
                folder,
                free: space.free,
                need,
                reserve,
            })
        }
    }

    /// The alarms standing now, for people.
    pub fn alarms(&self) -> Vec<String> {
        let alarms = self.alarms.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<String> = alarms.values().cloned().collect();
        out.sort();
        out
    }

    /// Measures every folder, updates the gauges and the alarms; returns the alarms
    /// raised or cleared since the last check.
    pub fn check(&self) -> Vec<Crossing> {
        let mut crossings = Vec::new();
        for (folder, path) in &self.folders {
            let label = [folder.as_str()];
            let space = match Space::of(path) {
                Ok(space) => space,
                Err(e) => {
                    tracing::warn!(folder = folder.as_str(), path = %path.display(), error = %e, "cannot measure free space");
                    continue;
                }
            };
            self.free
                .with_label_values(&label)
                .set(gauge_value(space.free));
            self.size
                .with_label_values(&label)
                .set(gauge_value(space.total));
            let level = space.level(self.settings.alarm_free_percent);
            self.alarm
                .with_label_values(&label)
                .set(i64::from(level == Level::Alarm));
            let detail = format!(
                "{}: {} of {} bytes free ({} %); the alarm is below {} %",
                path.display(),
                space.free,
                space.total,
                space.free_percent(),
                self.settings.alarm_free_percent
            );
            let mut alarms = self.alarms.lock().unwrap_or_else(PoisonError::into_inner);
            let was = alarms.contains_key(folder);
            if level == Level::Alarm {
                let message = format!("存储空间不足 · storage low: {} {detail}", folder.label());
                alarms.insert(*folder, message);
            } else {
                alarms.remove(folder);
            }
            if was != (level == Level::Alarm) {
                crossings.push(Crossing {
                    folder: *folder,
                    raised: !was,
                    detail,
                });
            }
        }
        crossings
    }
}

fn gauge_value(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// What every dashboard page shows at its top: storage failures, then alarms.
pub fn banners(faults: &StorageFaults, storage: &StorageWatch) -> Vec<String> {
    let mut out: Vec<String> = faults
        .halted()
        .iter()
        .map(|h| format!("存储故障 · storage failed: {h}"))
        .collect();
    out.extend(storage.alarms());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_and_the_reserve() {
        let space = Space {
            free: 9,
            total: 100,
        };
        assert_eq!(space.level(10), Level::Alarm);
        assert_eq!(
            space.level(9),
            Level::Fine,
            "exactly at the threshold is fine"
        );
        assert_eq!(space.level(0), Level::Fine, "0 % never alarms");
        assert_eq!(
            Space {
                free: 100,
                total: 100
            }
            .level(100),
            Level::Fine
        );
        assert!(space.has_room(4, 5));
        assert!(!space.has_room(5, 5));
        assert!(!space.has_room(u64::MAX, 1), "no overflow");
        assert_eq!(space.free_percent(), 9);
        assert_eq!(Space { free: 0, total: 0 }.free_percent(), 0);
    }

    #[test]
    fn a_check_reports_each_crossing_once() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let mut settings = StorageSettings {
            alarm_free_percent: 100,
            ..StorageSettings::default()
        };
        let watch = StorageWatch::new(
            settings.clone(),
            vec![(Folder::Media, dir.path().to_owned())],
            &metrics,
        );
        let first = watch.check();
        assert_eq!(first.len(), 1);
        assert!(first[0].raised);
        assert!(watch.check().is_empty(), "still raised: no second crossing");
        assert_eq!(watch.alarms().len(), 1);
        assert!(
            metrics
                .render()
                .contains("fieldsync_storage_alarm{folder=\"media\"} 1")
        );
        // The same folder under a watch whose alarm is off clears.
        settings.alarm_free_percent = 0;
        let off = StorageWatch::new(
            settings,
            vec![(Folder::Media, dir.path().to_owned())],
            &Metrics::new(),
        );
        assert!(off.check().is_empty(), "never raised, nothing to clear");
        assert!(off.alarms().is_empty());
    }
}
