//! The audit log's hash chain, as pure arithmetic: the canonical encoding of an entry,
//! the hash that links it to the one before, and a walker that checks a sequence of
//! stored entries. No database here, so every way a chain can break is a unit test.
//!
//! # Encoding (version 1)
//!
//! ```text
//! hash(entry N) = SHA-256( hash(entry N-1) ‖ canonical(entry N) )
//! hash(entry 0) = 32 zero bytes                       (the genesis "previous hash")
//!
//! canonical(e) = "fieldsync-audit-v1"                  (18 ASCII bytes, a fixed tag)
//!              ‖ i64 big-endian  e.seq
//!              ‖ i64 big-endian  e.at                  (ms since the Unix epoch, UTC)
//!              ‖ u64 big-endian  len(actor)   ‖ actor   (UTF-8 bytes)
//!              ‖ u64 big-endian  len(action)  ‖ action
//!              ‖ u64 big-endian  len(subject) ‖ subject
//!              ‖ u64 big-endian  len(detail)  ‖ detail
//! ```
//!
//! Every variable-length field is length-prefixed, so no two different entries encode
//! to the same bytes (moving a character from `actor` to `action` changes the hash).
//! Hashes are stored as 64 lowercase hex digits. The encoding is deliberately not serde:
//! it must never change when a library's output format does.

use sha2::{Digest, Sha256};

/// A SHA-256 chain hash.
pub type ChainHash = [u8; 32];

/// The "previous hash" of the first entry.
pub const GENESIS: ChainHash = [0; 32];

/// The fixed tag that starts every canonical encoding (the encoding's version).
pub const TAG: &[u8] = b"fieldsync-audit-v1";

/// The hashed content of one audit entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryContent<'a> {
    /// Position in the log, 1 for the first entry, no gaps.
    pub seq: i64,
    /// When it happened (ms since the Unix epoch, UTC).
    pub at: i64,
    /// Who did it (an operator, a tool, `gateway`).
    pub actor: &'a str,
    /// What was done (`device_status_set`, `connection_refused`, ...).
    pub action: &'a str,
    /// What it was done to (a device id, a certificate number, an agency name).
    pub subject: &'a str,
    /// The particulars, as JSON text.
    pub detail: &'a str,
}

/// The canonical bytes of an entry (see the module documentation).
pub fn canonical_bytes(entry: &EntryContent<'_>) -> Vec<u8> {
    let texts = [entry.actor, entry.action, entry.subject, entry.detail];
    let len = TAG.len() + 16 + texts.iter().map(|t| 8 + t.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(TAG);
    out.extend_from_slice(&entry.seq.to_be_bytes());
    out.extend_from_slice(&entry.at.to_be_bytes());
    for text in texts {
        out.extend_from_slice(&(text.len() as u64).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// The hash of an entry that follows an entry whose hash is `prev`.
pub fn entry_hash(prev: &ChainHash, entry: &EntryContent<'_>) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(canonical_bytes(entry));
    hasher.finalize().into()
}

/// Parses a stored 64-hex-digit hash.
pub fn parse_hash(hex_text: &str) -> Option<ChainHash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut out).ok()?;
    Some(out)
}

/// Where and how a chain is broken. The first break found is reported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The entry's content does not hash to its stored hash: it was edited.
    #[error("audit entry {seq} was altered: its content does not match its hash")]
    HashMismatch {
        /// The altered entry.
        seq: i64,
    },
    /// The entry does not name the previous entry's hash: an entry before it was
    /// removed or replaced (or this one was re-hashed after an edit).
    #[error("audit entry {seq} does not follow the entry before it")]
    BrokenLink {
        /// The first entry whose link is wrong.
        seq: i64,
    },
    /// Sequence numbers skip: entries `expected..found` are missing.
    #[error("audit entries {expected}..{found} are missing")]
    SeqGap {
        /// The sequence number that should have come next.
        expected: i64,
        /// The one that did.
        found: i64,
    },
    /// A stored hash is not 64 hex digits.
    #[error("audit entry {seq} has a malformed hash")]
    Malformed {
        /// The entry.
        seq: i64,
    },
}

/// A stored entry as the walker sees it: content plus the two stored hashes (hex).
#[derive(Clone, Copy, Debug)]
pub struct StoredLink<'a> {
    /// The hashed content.
    pub content: EntryContent<'a>,
    /// The stored previous hash (hex).
    pub prev_hash: &'a str,
    /// The stored hash (hex).
    pub hash: &'a str,
}

/// Checks entries one by one, in `seq` order, from the first.
#[derive(Clone, Debug)]
pub struct ChainWalker {
    last_seq: i64,
    head: ChainHash,
}

impl Default for ChainWalker {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainWalker {
    /// A walker expecting entry 1.
    pub fn new() -> Self {
        Self {
            last_seq: 0,
            head: GENESIS,
        }
    }

    /// Checks the next entry and advances past it.
    pub fn check(&mut self, link: &StoredLink<'_>) -> Result<(), ChainBreak> {
        let seq = link.content.seq;
        let expected = self.last_seq + 1;
        if seq != expected {
            return Err(ChainBreak::SeqGap {
                expected,
                found: seq,
            });
        }
        let (Some(prev), Some(hash)) = (parse_hash(link.prev_hash), parse_hash(link.hash)) else {
            return Err(ChainBreak::Malformed { seq });
        };
        if entry_hash(&prev, &link.content) != hash {
            return Err(ChainBreak::HashMismatch { seq });
        }
        if prev != self.head {
            return Err(ChainBreak::BrokenLink { seq });
        }
        self.last_seq = seq;
        self.head = hash;
        Ok(())
    }

    /// The last entry checked (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// The hash of the last entry checked ([`GENESIS`] before any).
    pub fn head(&self) -> ChainHash {
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(seq: i64, detail: &str) -> EntryContent<'_> {
        EntryContent {
            seq,
            at: 1_700_000_000_000 + seq,
            actor: "alice",
            action: "a",
            subject: "s",
            detail,
        }
    }

    /// A valid chain of `n` entries: (content, prev hex, hash hex).
    fn chain(details: &[String]) -> Vec<(EntryContent<'_>, String, String)> {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for (i, d) in details.iter().enumerate() {
            let c = content(i as i64 + 1, d);
            let h = entry_hash(&prev, &c);
            out.push((c, hex::encode(prev), hex::encode(h)));
            prev = h;
        }
        out
    }

    fn walk(entries: &[(EntryContent<'_>, String, String)]) -> Result<ChainWalker, ChainBreak> {
        let mut walker = ChainWalker::new();
        for (c, p, h) in entries {
            walker.check(&StoredLink {
                content: *c,
                prev_hash: p,
                hash: h,
            })?;
        }
        Ok(walker)
    }

    fn details(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{{\"i\":{i}}}")).collect()
    }

    #[test]
    fn canonical_encoding_is_exact() {
        let c = EntryContent {
            seq: 1,
            at: 2,
            actor: "ab",
            action: "",
            subject: "s",
            detail: "{}",
        };
        let mut want = b"fieldsync-audit-v1".to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, b's']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, b'{', b'}']);
        assert_eq!(canonical_bytes(&c), want);
    }

    #[test]
    fn known_answer() {
        // Pinned so that an accidental change of the encoding fails loudly: every
        // stored chain would stop verifying.
        let c = EntryContent {
            seq: 1,
            at: 0,
            actor: "a",
            action: "b",
            subject: "c",
            detail: "d",
        };
        // Computed independently: Python's hashlib over the bytes the module docs give.
        assert_eq!(
            hex::encode(entry_hash(&GENESIS, &c)),
            "d8031ba28db724319aa65e2a787579e27844775998258e03b890187b63416309"
        );
    }

    #[test]
    fn field_boundaries_matter() {
        let a = EntryContent {
            seq: 1,
            at: 0,
            actor: "ab",
            action: "c",
            subject: "",
            detail: "",
        };
        let b = EntryContent {
            seq: 1,
            at: 0,
            actor: "a",
            action: "bc",
            subject: "",
            detail: "",
        };
        assert_ne!(entry_hash(&GENESIS, &a), entry_hash(&GENESIS, &b));
    }

    #[test]
    fn a_valid_chain_walks() {
        let d = details(5);
        let entries = chain(&d);
        let walker = walk(&entries).unwrap();
        assert_eq!(walker.last_seq(), 5);
        assert_eq!(hex::encode(walker.head()), entries[4].2);
        assert_eq!(ChainWalker::new().head(), GENESIS);
    }

    #[test]
    fn an_edited_entry_is_found_at_its_seq() {
        let d = details(5);
        let mut entries = chain(&d);
        entries[2].0.detail = "{\"i\":99}";
        assert_eq!(
            walk(&entries).unwrap_err(),
            ChainBreak::HashMismatch { seq: 3 }
        );
    }

    #[test]
    fn an_edited_and_rehashed_entry_breaks_the_next_link() {
        let d = details(5);
        let mut entries = chain(&d);
        entries[2].0.detail = "{\"i\":99}";
        let prev = parse_hash(&entries[2].1).unwrap();
        entries[2].2 = hex::encode(entry_hash(&prev, &entries[2].0));
        assert_eq!(
            walk(&entries).unwrap_err(),
            ChainBreak::BrokenLink { seq: 4 }
        );
    }

    #[test]
    fn a_deleted_entry_is_a_gap() {
        let d = details(5);
        let mut entries = chain(&d);
        entries.remove(1);
        assert_eq!(
            walk(&entries).unwrap_err(),
            ChainBreak::SeqGap {
                expected: 2,
                found: 3
            }
        );
        let mut entries = chain(&d);
        entries.remove(0);
        assert_eq!(
            walk(&entries).unwrap_err(),
            ChainBreak::SeqGap {
                expected: 1,
                found: 2
            }
        );
    }

    #[test]
    fn a_deleted_and_renumbered_entry_no_longer_hashes() {
        let d = details(4);
        let mut entries = chain(&d);
        entries.remove(1);
        // Renumbering the later entries changes their content, so their hashes fail.
        for (i, e) in entries.iter_mut().enumerate() {
            e.0.seq = i as i64 + 1;
        }
        let err = walk(&entries).unwrap_err();
        assert_eq!(err, ChainBreak::HashMismatch { seq: 2 });
    }

    #[test]
    fn malformed_hashes_are_reported() {
        let d = details(2);
        let mut entries = chain(&d);
        entries[1].2 = "zz".into();
        assert_eq!(
            walk(&entries).unwrap_err(),
            ChainBreak::Malformed { seq: 2 }
        );
    }
}
