//! The group commit's officer lookups: the certificate histories of every number a
//! group names, in one statement, and a cache of numbers known to be absent from the
//! certificate history at one roster version, so they are not looked up again.
//!
//! Why: a device may list numbers nobody registered (a typo, a stolen certificate
//! naming 16 invented officers on each of 256 records). Each group looks its numbers up
//! in one statement; numbers that statement did not find are remembered here, so the
//! same numbers cost nothing in later groups. Every officer insert or change takes a
//! new roster version (on any gateway sharing the database), and the certificate
//! history only grows by such changes, so absence known at version V holds for as long
//! as the version is V: a group reads the version first and the cache forgets
//! everything it learnt at another one. The cache is bounded ([`CAPACITY`]); when full
//! it starts over, which costs one lookup more, never a wrong answer.
//!
//! [`AbsentOfficers`] is pure; [`OfficerLookups`] does the reads inside the group's
//! transaction.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::StoreError;
use super::certificate_history::{self, CertificateState, on_conn};
use super::tx::TxConn;

/// Numbers remembered at most. A certificate number is at most the protocol's field
/// limit (256 bytes), so the cache holds a few MiB at worst.
pub(crate) const CAPACITY: usize = 16_384;

/// Numbers known absent at one roster version.
#[derive(Debug, Default)]
pub(crate) struct AbsentOfficers {
    version: u64,
    numbers: HashSet<String>,
}

impl AbsentOfficers {
    /// The numbers of `wanted` that may be in the history at roster `version` (those
    /// not known absent), each once. What was learnt at another version is forgotten.
    pub(crate) fn not_known_absent<'a>(
        &mut self,
        version: u64,
        wanted: &[&'a str],
    ) -> Vec<&'a str> {
        if version != self.version {
            self.version = version;
            self.numbers.clear();
        }
        let mut seen = HashSet::new();
        wanted
            .iter()
            .copied()
            .filter(|n| !self.numbers.contains(*n) && seen.insert(*n))
            .collect()
    }

    /// Remembers `numbers` as absent at roster `version` (a lookup made at that
    /// version did not find them). Ignored if the cache has moved to another version
    /// meanwhile; a full cache starts over first.
    pub(crate) fn remember<'a>(
        &mut self,
        version: u64,
        numbers: impl IntoIterator<Item = &'a str>,
    ) {
        if version != self.version {
            return;
        }
        for number in numbers {
            if self.numbers.len() >= CAPACITY {
                self.numbers.clear();
            }
            self.numbers.insert(number.to_owned());
        }
    }
}

/// The lookups of a store's group commits: the absence cache and a count of the lookup
/// statements run (for tests and operators: it shows the cache working).
#[derive(Debug, Default)]
pub(crate) struct OfficerLookups {
    absent: Mutex<AbsentOfficers>,
    statements: AtomicU64,
}

impl OfficerLookups {
    /// The certificate histories of `numbers` as the transaction `conn` sees them
    /// (unknown numbers are absent from the map): the roster version first, then one
    /// statement for the numbers not known absent at that version (none if all are).
    /// Reading the version first keeps the cache right on PostgreSQL, where another
    /// gateway may add an officer between the two reads: an absence seen after version
    /// V was read holds at V.
    pub(crate) async fn histories(
        &self,
        conn: &mut TxConn,
        numbers: &[&str],
    ) -> Result<BTreeMap<String, Vec<CertificateState>>, StoreError> {
        if numbers.is_empty() {
            return Ok(BTreeMap::new());
        }
        let version: i64 = on_conn!(conn, c => {
            sqlx::query_scalar("SELECT version FROM roster_head WHERE id = 1")
                .fetch_one(&mut *c)
                .await?
        });
        let version =
            u64::try_from(version).map_err(|e| StoreError::corrupt("roster version", e))?;
        let wanted = self.lock().not_known_absent(version, numbers);
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.statements.fetch_add(1, Ordering::Relaxed);
        let found = certificate_history::histories(conn, &wanted).await?;
        self.lock().remember(
            version,
            wanted.iter().copied().filter(|n| !found.contains_key(*n)),
        );
        Ok(found)
    }

    /// Officer lookup statements run by group commits since the store was opened.
    pub(crate) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AbsentOfficers> {
        self.absent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_known_absent_are_not_looked_up_again_at_the_same_version() {
        let mut cache = AbsentOfficers::default();
        assert_eq!(cache.not_known_absent(3, &["A", "B", "A"]), vec!["A", "B"]);
        cache.remember(3, ["B"]);
        assert_eq!(cache.not_known_absent(3, &["A", "B"]), vec!["A"]);
    }

    #[test]
    fn a_new_roster_version_forgets_every_absence() {
        let mut cache = AbsentOfficers::default();
        cache.not_known_absent(3, &["B"]);
        cache.remember(3, ["B"]);
        assert_eq!(cache.not_known_absent(4, &["B"]), vec!["B"]);
        // An absence learnt at an older version (a slow group) is not kept.
        cache.remember(3, ["B"]);
        assert_eq!(cache.not_known_absent(4, &["B"]), vec!["B"]);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = AbsentOfficers::default();
        let numbers: Vec<String> = (0..=CAPACITY).map(|i| format!("N{i}")).collect();
        cache.not_known_absent(1, &[]);
        cache.remember(1, numbers.iter().map(String::as_str));
        assert!(cache.numbers.len() <= CAPACITY);
        // The last number is remembered, the first one was forgotten.
        assert_eq!(
            cache.not_known_absent(1, &[numbers[CAPACITY].as_str()]),
            Vec::<&str>::new()
        );
        assert_eq!(cache.not_known_absent(1, &["N0"]), vec!["N0"]);
    }
}
