//! The audit log: append-only, hash-chained entries for every registry change and for
//! other security events (a refused handshake), and the walk that verifies the chain.
//!
//! Appends happen inside a [`WriteTx`], which holds the chain head, so entries are
//! numbered 1, 2, 3, … with no gaps and no forks, on either backend, from any number of
//! tasks or gateways. The arithmetic lives in [`super::chain`].
//!
//! # What verification detects, and its limits
//! - an edited entry: its content no longer matches its hash (reported at its seq);
//! - an edited and re-hashed entry: the next entry's link breaks;
//! - a deleted entry: a gap in seq (or a broken link if the rest was renumbered);
//! - a truncated tail: the last entry no longer matches the chain head row.
//!
//! Someone with write access to the database can rewrite the whole chain and the head
//! consistently; nothing inside one database can detect that. Record
//! [`AuditReport::head_hash`] outside the database (a log line, a report, a signed
//! export) and compare later: the chain then proves nothing before that point changed.

use protocol::Millis;
use serde_json::json;

use super::chain::{self, ChainBreak, ChainWalker, EntryContent, StoredLink};
use super::tx::{ReadTx, WriteTx};
use super::{Store, StoreError};

/// The action words written by the store (other components may use their own).
pub mod actions {
    /// An agency was created.
    pub const AGENCY_CREATED: &str = "agency_created";
    /// An agency's class or class C target changed.
    pub const AGENCY_CLASS_SET: &str = "agency_class_set";
    /// An officer was added to the roster.
    pub const OFFICER_CREATED: &str = "officer_created";
    /// An officer's roster entry changed.
    pub const OFFICER_UPDATED: &str = "officer_updated";
    /// An officer's certificate status changed (withdrawn, revoked, ...).
    pub const CERTIFICATE_STATUS_SET: &str = "certificate_status_set";
    /// A device was enrolled.
    pub const DEVICE_ENROLLED: &str = "device_enrolled";
    /// A device's status changed.
    pub const DEVICE_STATUS_SET: &str = "device_status_set";
    /// A device was assigned to an agency and/or officer.
    pub const DEVICE_ASSIGNED: &str = "device_assigned";
    /// An enrollment file was imported (one entry per file, after the device entries).
    pub const ENROLLMENT_IMPORTED: &str = "enrollment_imported";
    /// The QUIC endpoint refused a device's handshake (one entry per refusal; written
    /// by versions before issue 19, still read).
    pub const CONNECTION_REFUSED: &str = "connection_refused";
    /// A summary of the handshakes the QUIC endpoint refused for one reason over one
    /// interval (issue 19).
    pub const CONNECTIONS_REFUSED: &str = "connections_refused";
    /// A folder's free space fell below `storage.alarm_free_percent`.
    pub const STORAGE_ALARM_RAISED: &str = "storage_alarm_raised";
    /// A folder's free space is above the alarm's threshold again.
    pub const STORAGE_ALARM_CLEARED: &str = "storage_alarm_cleared";
    /// A review raised a record's two-officer flag (issue 21: a certificate change
    /// dated back, or a correction that leaves too few certified officers).
    pub const TWO_OFFICER_FLAG_RAISED: &str = "two_officer_flag_raised";
    /// A review cleared a record's two-officer flag (an officer entered late, a
    /// correction adding the second officer).
    pub const TWO_OFFICER_FLAG_CLEARED: &str = "two_officer_flag_cleared";
}

/// Handshakes refused for one reason over one interval, as the audit log keeps them.
#[derive(Clone, Copy, Debug)]
pub struct RefusedConnections<'a> {
    /// The refusal reason (`no_certificate`, `bad_chain`, `expired`, …).
    pub reason: &'a str,
    /// How many.
    pub count: u64,
    /// When the first was refused.
    pub first: Millis,
    /// When the last was refused.
    pub last: Millis,
    /// A few sample peers (address, and fingerprint when a certificate was presented).
    pub samples: &'a [String],
}

/// One entry of the audit log, as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Position in the log: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// When it happened (the caller's `now`).
    pub at: Millis,
    /// Who did it.
    pub actor: String,
    /// What was done (see [`actions`]).
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// The particulars, as JSON text.
    pub detail: String,
    /// Hash of the previous entry (64 hex digits; zeros for entry 1).
    pub prev_hash: String,
    /// This entry's chain hash (64 hex digits).
    pub hash: String,
}

impl AuditEntry {
    fn link(&self) -> StoredLink<'_> {
        StoredLink {
            content: EntryContent {
                seq: self.seq,
                at: self.at,
                actor: &self.actor,
                action: &self.action,
                subject: &self.subject,
                detail: &self.detail,
            },
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

/// A verified chain: how long it is and where it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Number of entries (= the last seq).
    pub entries: i64,
    /// Hash of the last entry (64 hex digits; zeros for an empty log). Keep it outside
    /// the database to detect a later rewrite of the whole chain.
    pub head_hash: String,
}

/// Why the audit log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An entry was edited, removed or reordered.
    #[error(transparent)]
    Broken(#[from] ChainBreak),
    /// The chain does not end where the head row says: the tail was truncated, or
    /// entries were added past the head, or the head row itself was edited.
    #[error("the audit log ends at entry {last_seq} but its head records entry {head_seq}")]
    HeadMismatch {
        /// The last entry according to the head row.
        head_seq: i64,
        /// The last entry found by the walk.
        last_seq: i64,
    },
    /// The walk could not read the log.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        AuditError::Store(e.into())
    }
}

/// Entries read per query during verification.
const VERIFY_PAGE: i64 = 1000;

const SELECT_ENTRIES: &str = "SELECT seq, at, actor, action, subject, detail, prev_hash, hash \
     FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";

impl WriteTx {
    /// Appends an entry after the current head, inside this transaction.
    pub(crate) async fn append_audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        now: Millis,
    ) -> Result<AuditEntry, StoreError> {
        let seq = self.head.seq + 1;
        let content = EntryContent {
            seq,
            at: now,
            actor,
            action,
            subject,
            detail,
        };
        let hash = chain::entry_hash(&self.head.hash, &content);
        let entry = AuditEntry {
            seq,
            at: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            prev_hash: hex::encode(self.head.hash),
            hash: hex::encode(hash),
        };
        on_tx!(self, c => {
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(entry.seq)
            .bind(entry.at)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.subject)
            .bind(&entry.detail)
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .execute(&mut *c)
            .await?;
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(entry.seq)
                .bind(&entry.hash)
                .execute(&mut *c)
                .await?;
        });
        self.head = super::tx::ChainHead { seq, hash };
        Ok(entry)
    }
}

impl Store {
    /// Appends an event that is not a registry change (the registry methods audit
    /// their own changes), in its own transaction.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        now: Millis,
    ) -> Result<AuditEntry, StoreError> {
        let mut tx = self.write().await?;
        let entry = tx.append_audit(actor, action, subject, detail, now).await?;
        self.commit(tx).await?;
        Ok(entry)
    }

    /// Records a summary of the handshakes refused for one reason over one interval:
    /// how many, the first and last time, and a few sample peers. The gateway writes at
    /// most one per reason per interval (`gateway::refusals`), so a flood of refusals
    /// cannot grow this append-only log without bound. The subject is the reason.
    pub async fn audit_refused_connections(
        &self,
        summary: &RefusedConnections<'_>,
        now: Millis,
    ) -> Result<AuditEntry, StoreError> {
        let detail = json!({
            "reason": summary.reason,
            "count": summary.count,
            "first": summary.first,
            "last": summary.last,
            "samples": summary.samples,
        });
        self.append_audit(
            "gateway",
            actions::CONNECTIONS_REFUSED,
            summary.reason,
            &detail.to_string(),
            now,
        )
        .await
    }

    /// Reads up to `limit` entries after `after_seq`, in order (for the admin API and
    /// exports).
    pub async fn audit_entries(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(on_pool!(self.db(), p => {
            sqlx::query_as(SELECT_ENTRIES)
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        }))
    }

    /// True when an entry with this hash is in the log. After
    /// [`Store::verify_audit_log`] succeeds, a head hash kept outside the database
    /// still being present proves every entry up to it is unchanged, which catches a
    /// rewrite of the whole chain that a self-consistent walk cannot.
    pub async fn audit_contains_hash(&self, hash: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(self.db(), p => {
            sqlx::query_scalar("SELECT seq FROM audit_log WHERE hash = $1")
                .bind(hash.to_ascii_lowercase())
                .fetch_optional(p)
                .await?
        });
        Ok(found.is_some())
    }

    /// Walks the whole chain in one snapshot and checks every link and the head.
    /// See the module documentation for what is detected and the limits.
    pub async fn verify_audit_log(&self) -> Result<AuditReport, AuditError> {
        let mut tx = ReadTx::begin(self.db()).await?;
        let (head_seq, head_hash): (i64, String) = on_tx!(tx, c => {
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&mut *c)
                .await?
        });
        let mut walker = ChainWalker::new();
        loop {
            let page: Vec<AuditEntry> = on_tx!(tx, c => {
                sqlx::query_as(SELECT_ENTRIES)
                    .bind(walker.last_seq())
                    .bind(VERIFY_PAGE)
                    .fetch_all(&mut *c)
                    .await?
            });
            for entry in &page {
                walker.check(&entry.link())?;
            }
            if (page.len() as i64) < VERIFY_PAGE {
                break;
            }
        }
        tx.finish().await?;
        let head = hex::encode(walker.head());
        if walker.last_seq() != head_seq || head != head_hash {
            return Err(AuditError::HeadMismatch {
                head_seq,
                last_seq: walker.last_seq(),
            });
        }
        Ok(AuditReport {
            entries: walker.last_seq(),
            head_hash: head,
        })
    }
}
