//! The end-of-run check: everything a simulated device saw acknowledged is in the
//! gateway's store exactly once, every device's chain verifies, and every stored
//! recording's bytes are in the media store with the announced SHA-256.
//!
//! The comparison ([`check_records`]) is pure; [`verify`] reads the store and the
//! media store of the gateway's configuration (after the gateway stopped).

use std::collections::HashMap;

use media::MediaStore;
use protocol::DeviceId;
use serde::Serialize;
use store::Store;
use store::StoredRecord;

use crate::sim::{AckedRecord, Outcome};

/// What verification found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Records the devices saw acknowledged.
    pub records_acked: u64,
    /// Records stored by the gateway (for the devices of this run).
    pub records_stored: u64,
    /// Acknowledged records missing from the store (or another record at their place).
    pub records_lost: u64,
    /// Records whose content is stored more than once.
    pub records_duplicated: u64,
    /// Devices whose stored chain does not verify.
    pub chains_broken: u64,
    /// Tamper flags the gateway raised.
    pub tamper_flags: u64,
    /// Records the gateway refused (kept on the devices).
    pub records_refused: u64,
    /// Recordings the devices saw stored.
    pub recordings_acked: u64,
    /// Acknowledged recordings missing from the store or the media store.
    pub recordings_lost: u64,
    /// Recordings stored more than once, or whose bytes differ from what was announced.
    pub recordings_bad: u64,
    /// Entries in the audit log at the end of the run.
    pub audit_entries: i64,
    /// 1 when the audit log's chain does not verify.
    pub audit_broken: u64,
    /// The first few problems, in words.
    pub problems: Vec<String>,
}

/// Problems listed in full at most.
const MAX_PROBLEMS: usize = 20;

impl Verification {
    /// True when nothing was lost, duplicated, refused or broken.
    pub fn passed(&self) -> bool {
        self.records_lost == 0
            && self.records_duplicated == 0
            && self.chains_broken == 0
            && self.tamper_flags == 0
            && self.records_refused == 0
            && self.recordings_lost == 0
            && self.recordings_bad == 0
            && self.audit_broken == 0
    }

    /// The failures for the report (empty when it passed).
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("verify: {n} {what}"));
            }
        };
        add(self.records_lost, "acknowledged records lost");
        add(self.records_duplicated, "records stored more than once");
        add(self.chains_broken, "device chains do not verify");
        add(self.tamper_flags, "tamper flags raised");
        add(self.records_refused, "records refused by the gateway");
        add(self.recordings_lost, "acknowledged recordings lost");
        add(
            self.recordings_bad,
            "recordings duplicated or with wrong bytes",
        );
        add(self.audit_broken, "audit log whose chain does not verify");
        if !out.is_empty() && !self.problems.is_empty() {
            out.push(format!("first problems: {}", self.problems.join(" | ")));
        }
        out
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

/// Why verification could not run (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store could not be read.
    #[error("reading the gateway's store: {0}")]
    Store(#[from] store::StoreError),
    /// The media store could not be opened.
    #[error("reading the gateway's media store: {0}")]
    Media(#[from] media::MediaError),
}

/// One device's records compared with its stored chain (pure).
pub fn check_records(
    device: &DeviceId,
    acked: &[AckedRecord],
    stored: &[StoredRecord],
    found: &mut Verification,
) {
    found.records_acked += acked.len() as u64;
    found.records_stored += stored.len() as u64;
    let by_sequence: HashMap<u64, &StoredRecord> =
        stored.iter().map(|r| (r.record.sequence, r)).collect();
    for a in acked {
        match by_sequence.get(&a.sequence) {
            Some(r) if r.record.hash == a.hash => {}
            Some(_) => {
                found.records_lost += 1;
                found.problem(format!(
                    "{device}: record {} is stored with another hash",
                    a.sequence
                ));
            }
            None => {
                found.records_lost += 1;
                found.problem(format!(
                    "{device}: acknowledged record {} missing",
                    a.sequence
                ));
            }
        }
    }
    // The same content stored twice (under two sequence numbers) is a duplicate:
    // every simulated record's text is unique to it.
    let mut texts: HashMap<&str, u32> = HashMap::new();
    for r in stored {
        *texts.entry(r.record.content.text.as_str()).or_default() += 1;
    }
    for (text, n) in texts {
        if n > 1 {
            found.records_duplicated += u64::from(n - 1);
            found.problem(format!("{device}: {text:?} stored {n} times"));
        }
    }
    let broken = stored.iter().any(|r| r.chain_break.is_some())
        || protocol::chain::verify_chain(device, stored.iter().map(|r| &r.record)).is_err();
    if broken {
        found.chains_broken += 1;
        found.problem(format!("{device}: the stored chain does not verify"));
    }
}

/// Checks every device's outcome against the gateway's store and media store.
pub async fn verify(
    config: &gateway::Config,
    outcomes: &[Outcome],
) -> Result<Verification, VerifyError> {
    let store = Store::open(&config.store_config()).await?;
    let media = MediaStore::open(&config.media, &config.data_dir)?;
    let mut found = Verification::default();
    let result = async {
        for o in outcomes {
            let stored = store.device_records(&o.device).await?;
            check_records(&o.device, &o.acked, &stored, &mut found);
            found.tamper_flags += store.tamper_flags(Some(&o.device)).await?.len() as u64;
            found.records_refused += o.refused as u64;
            check_recordings(&store, &media, o, &mut found).await?;
        }
        match store.verify_audit_log().await {
            Ok(report) => found.audit_entries = report.entries,
            Err(e) => {
                found.audit_broken = 1;
                found.problem(format!("audit log: {e}"));
            }
        }
        Ok::<_, VerifyError>(())
    }
    .await;
    store.close().await;
    result.map(|()| found)
}

async fn check_recordings(
    store: &Store,
    media: &MediaStore,
    o: &Outcome,
    found: &mut Verification,
) -> Result<(), VerifyError> {
    if o.recordings.is_empty() {
        return Ok(());
    }
    found.recordings_acked += o.recordings.len() as u64;
    let rows = store.recordings_of_device(&o.device).await?;
    let mut per_hash: HashMap<_, u32> = HashMap::new();
    for row in &rows {
        *per_hash.entry(row.sha256).or_default() += 1;
    }
    for r in &o.recordings {
        let Some(row) = rows.iter().find(|row| row.id == r.recording_id) else {
            found.recordings_lost += 1;
            found.problem(format!(
                "{}: recording {} missing",
                o.device, r.recording_id
            ));
            continue;
        };
        if !row.is_stored() || row.sha256 != r.sha256 || row.size != r.size {
            found.recordings_lost += 1;
            found.problem(format!(
                "{}: recording {} not stored as announced",
                o.device, r.recording_id
            ));
            continue;
        }
        if per_hash.get(&r.sha256).copied().unwrap_or(0) > 1 {
            found.recordings_bad += 1;
            found.problem(format!(
                "{}: recording {} stored more than once",
                o.device, r.recording_id
            ));
        }
        let held = media.holds(&r.sha256, r.size).await?.is_some();
        let intact = held && media.digest(&r.sha256).await.is_ok_and(|d| d == r.sha256);
        if !held {
            found.recordings_lost += 1;
            found.problem(format!(
                "{}: recording {} has no bytes in the media store",
                o.device, r.recording_id
            ));
        } else if !intact {
            found.recordings_bad += 1;
            found.problem(format!(
                "{}: recording {} bytes do not match their SHA-256",
                o.device, r.recording_id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::chain::ChainHead;
    use protocol::test_util::{record_content, seal_chain};

    fn chain(device: &DeviceId, texts: &[&str]) -> Vec<StoredRecord> {
        let contents = texts.iter().map(|t| record_content("C-1", t, 1));
        let (records, _) = seal_chain(device, ChainHead::GENESIS, contents);
        records
            .into_iter()
            .map(|record| StoredRecord {
                device: device.clone(),
                record,
                made_at_gateway: 1,
                clock_implausible: false,
                received_at: 1,
                chain_break: None,
            })
            .collect()
    }

    fn acked(stored: &[StoredRecord]) -> Vec<AckedRecord> {
        stored
            .iter()
            .map(|r| AckedRecord {
                sequence: r.record.sequence,
                hash: r.record.hash,
            })
            .collect()
    }

    #[test]
    fn every_acknowledged_record_stored_once_passes() {
        let d = DeviceId::new("dev-00001").unwrap();
        let stored = chain(&d, &["a", "b", "c"]);
        let mut found = Verification::default();
        check_records(&d, &acked(&stored[..2]), &stored, &mut found);
        assert!(found.passed(), "{found:?}");
        assert_eq!((found.records_acked, found.records_stored), (2, 3));
    }

    #[test]
    fn a_lost_record_a_duplicate_and_a_broken_chain_fail() {
        let d = DeviceId::new("dev-00001").unwrap();
        let stored = chain(&d, &["a", "b", "c"]);
        let mut found = Verification::default();
        check_records(&d, &acked(&stored), &stored[..2], &mut found);
        assert_eq!(found.records_lost, 1);
        assert!(!found.passed());
        assert!(found.failures()[0].contains("1 acknowledged records lost"));

        let dup = chain(&d, &["a", "a"]);
        let mut found = Verification::default();
        check_records(&d, &acked(&dup), &dup, &mut found);
        assert_eq!(found.records_duplicated, 1);

        let mut other = chain(&d, &["a", "x", "c"]);
        other[1].record.content.text = "edited".into();
        let mut found = Verification::default();
        check_records(&d, &[], &other, &mut found);
        assert_eq!(found.chains_broken, 1);

        let stored = chain(&d, &["a"]);
        let mut wrong = acked(&stored);
        wrong[0].hash = protocol::Sha256Hash::ZERO;
        let mut found = Verification::default();
        check_records(&d, &wrong, &stored, &mut found);
        assert_eq!(found.records_lost, 1);
    }
}
