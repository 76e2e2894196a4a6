//! What `agent status` shows: what is queued, what was refused, the last sync, the
//! roster version and the clock skew.

use std::fmt;

use protocol::Millis;
use serde::Serialize;

use crate::agent::Agent;
use crate::outbox::StoreError;
use crate::outbox::state::keys;

/// A refused record, for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefusedRecord {
    /// Its sequence number when pushed.
    pub sequence: u64,
    /// Its case.
    pub case_number: String,
    /// Why the gateway refused it.
    pub reason: String,
    /// The sequence of its re-sealed copy, if its content was sealed again.
    pub resealed_as: Option<u64>,
}

/// The agent's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The device.
    pub device_id: String,
    /// The configured gateway, or `None` for mDNS discovery.
    pub gateway: Option<String>,
    /// Records waiting for the gateway.
    pub queued_records: u64,
    /// Device time the oldest of them was queued.
    pub oldest_queued_at: Option<Millis>,
    /// The sequence number the next record gets.
    pub next_sequence: u64,
    /// Records the gateway refused (kept here).
    pub refused_records: Vec<RefusedRecord>,
    /// Offline identity checks waiting for upload.
    pub queued_checks: u64,
    /// Offline identity checks the gateway refused.
    pub refused_checks: u64,
    /// The roster version held (0: never synced).
    pub roster_version: u64,
    /// Officers in the cached roster.
    pub roster_size: u64,
    /// Device time of the last complete sync.
    pub last_sync_at: Option<Millis>,
    /// Device time of the last attempt.
    pub last_attempt_at: Option<Millis>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The gateway the last sync reached.
    pub last_gateway: Option<String>,
    /// Gateway time minus device time at the last hello.
    pub clock_skew_ms: Option<i64>,
    /// Records the gateway acknowledged as stored, in total.
    pub records_stored_total: i64,
    /// Records it acknowledged as already stored.
    pub records_duplicate_total: i64,
    /// Records confirmed by its chain head.
    pub records_confirmed_total: i64,
    /// Offline checks it acknowledged.
    pub checks_uploaded_total: i64,
    /// Recordings waiting for upload.
    pub pending_recordings: u64,
    /// The earliest upload deadline among them (device time).
    pub next_recording_deadline: Option<Millis>,
    /// Recordings refused (copies kept; see `agent recording list`).
    pub refused_recordings: u64,
}

impl Agent {
    /// Reads the agent's state from its store.
    pub async fn status(&self) -> Result<Status, StoreError> {
        let o = self.outbox();
        let refused_records = o
            .rejected_records()
            .await?
            .into_iter()
            .map(|r| RefusedRecord {
                sequence: r.sequence,
                case_number: r.case_number,
                reason: r.reason,
                resealed_as: r.resealed_as,
            })
            .collect();
        let (pending_recordings, next_recording_deadline) = o.pending_recordings_summary().await?;
        Ok(Status {
            device_id: self.device_id().to_string(),
            gateway: self.config().gateway.clone(),
            queued_records: o.queued_record_count().await?,
            oldest_queued_at: o.oldest_queued_record().await?,
            next_sequence: o.chain_head().await?.next_sequence,
            refused_records,
            queued_checks: o.queued_check_count().await?,
            refused_checks: o.rejected_check_count().await?,
            roster_version: o.roster_version().await?,
            roster_size: o.roster_size().await?,
            last_sync_at: o.state_time(keys::LAST_SYNC_AT).await?,
            last_attempt_at: o.state_time(keys::LAST_ATTEMPT_AT).await?,
            last_error: o.state(keys::LAST_ERROR).await?,
            last_gateway: o.state(keys::GATEWAY).await?,
            clock_skew_ms: o.state_time(keys::CLOCK_SKEW_MS).await?,
            records_stored_total: o.state_i64(keys::RECORDS_STORED).await?,
            records_duplicate_total: o.state_i64(keys::RECORDS_DUPLICATE).await?,
            records_confirmed_total: o.state_i64(keys::RECORDS_CONFIRMED).await?,
            checks_uploaded_total: o.state_i64(keys::CHECKS_UPLOADED).await?,
            pending_recordings,
            next_recording_deadline,
            refused_recordings: o.refused_recording_count().await?,
        })
    }
}

/// Formats a device time as RFC 3339 UTC.
pub fn format_time(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn opt_time(t: Option<Millis>) -> String {
    t.map(format_time).unwrap_or_else(|| "never".into())
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "device            {}", self.device_id)?;
        writeln!(
            f,
            "gateway           {}",
            self.gateway.as_deref().unwrap_or("(mDNS discovery)")
        )?;
        writeln!(
            f,
            "queued records    {} (oldest queued {}); next sequence {}",
            self.queued_records,
            opt_time(self.oldest_queued_at),
            self.next_sequence
        )?;
        writeln!(
            f,
            "queued checks     {} ({} refused)",
            self.queued_checks, self.refused_checks
        )?;
        writeln!(
            f,
            "recordings        {} waiting (earliest deadline {}); {} refused, copies kept",
            self.pending_recordings,
            opt_time(self.next_recording_deadline),
            self.refused_recordings
        )?;
        writeln!(
            f,
            "roster            version {} ({} officers){}",
            self.roster_version,
            self.roster_size,
            if self.roster_version == 0 {
                ": never synced, offline checks answer unknown"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "last sync         {} via {}",
            opt_time(self.last_sync_at),
            self.last_gateway.as_deref().unwrap_or("-")
        )?;
        writeln!(f, "last attempt      {}", opt_time(self.last_attempt_at))?;
        if let Some(e) = &self.last_error {
            writeln!(f, "last error        {e}")?;
        }
        match self.clock_skew_ms {
            Some(ms) => writeln!(f, "clock skew        {ms} ms (gateway minus device)")?,
            None => writeln!(f, "clock skew        unknown (never synced)")?,
        }
        writeln!(
            f,
            "acknowledged      {} stored, {} duplicate, {} confirmed; {} checks",
            self.records_stored_total,
            self.records_duplicate_total,
            self.records_confirmed_total,
            self.checks_uploaded_total
        )?;
        writeln!(f, "refused records   {}", self.refused_records.len())?;
        for r in &self.refused_records {
            write!(f, "  #{} case {}: {}", r.sequence, r.case_number, r.reason)?;
            match r.resealed_as {
                Some(s) => writeln!(f, " (content sealed again as #{s})")?,
                None => writeln!(f, " (kept here)")?,
            }
        }
        Ok(())
    }
}
