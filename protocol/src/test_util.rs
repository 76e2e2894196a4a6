//! Fixtures shared by the tests of every crate, behind the `test-util` feature (and
//! always in protocol's own tests), so that no crate keeps its own copy of "a field
//! record" that drifts from the others. Never part of a product build.

use crate::DeviceId;
use crate::Millis;
use crate::chain::{ChainHead, seal};
use crate::domain::Stage;
use crate::message::{Coordinates, FieldRecord, RecordContent};

/// When the numbered records of [`numbered_content`] are made: 2023-11-14T22:13:20Z.
pub const NUMBERED_FROM: Millis = 1_700_000_000_000;

/// A field record's content: an inspection at the investigation stage of `case`
/// (enforcement target "target of {case}") by the two officers ZF-001 and ZF-002, at
/// a street address with coordinates, made at `made_at`, with no recordings and
/// correcting nothing. A test changes the fields it is about with struct update
/// syntax: `RecordContent { stage: Stage::Archive, ..record_content("C-1", "x", 1) }`.
pub fn record_content(case: &str, text: &str, made_at: Millis) -> RecordContent {
    RecordContent {
        case_number: case.into(),
        target: format!("target of {case}"),
        stage: Stage::Investigation,
        action_kind: "inspection".into(),
        text: text.into(),
        officers: vec!["ZF-001".into(), "ZF-002".into()],
        location: Some("No. 7 Market Street".into()),
        coordinates: Some(Coordinates {
            lat_e6: 31_230_400,
            lon_e6: 121_473_700,
        }),
        made_at,
        recordings: vec![],
        corrects: None,
    }
}

/// Record `i` of case CASE-1: text "entry {i}", made `i` milliseconds after
/// [`NUMBERED_FROM`], so that every numbered record has its own hash.
pub fn numbered_content(i: u64) -> RecordContent {
    let made_at = NUMBERED_FROM.saturating_add(Millis::try_from(i).unwrap_or(Millis::MAX));
    record_content("CASE-1", &format!("entry {i}"), made_at)
}

/// Seals `contents` in order onto `device`'s chain after `head`, as a device's outbox
/// does; returns the records and the head after the last one.
pub fn seal_chain(
    device: &DeviceId,
    head: ChainHead,
    contents: impl IntoIterator<Item = RecordContent>,
) -> (Vec<FieldRecord>, ChainHead) {
    let mut head = head;
    let records = contents
        .into_iter()
        .map(|content| {
            let record = seal(device, &head, content);
            head = head.advance(&record);
            record
        })
        .collect();
    (records, head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::verify_chain;
    use crate::limits::Limits;

    #[test]
    fn the_fixture_is_a_valid_record() {
        assert!(
            record_content("C-1", "x", 1)
                .validate(&Limits::default())
                .is_ok()
        );
        assert_eq!(numbered_content(3).made_at, NUMBERED_FROM + 3);
    }

    #[test]
    fn a_sealed_chain_verifies_and_ends_at_the_returned_head() {
        let device = DeviceId::new("dev-1").unwrap();
        let (records, head) =
            seal_chain(&device, ChainHead::GENESIS, (1..=4).map(numbered_content));
        assert_eq!(verify_chain(&device, &records).unwrap(), head);
        assert_eq!(head.next_sequence, 5);
    }
}
