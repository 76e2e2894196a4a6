//! Full-process recording (DOMAIN R3): a record of a full-process action kind with no
//! stored, linked recording covering its time is flagged "missing audio-video" once its
//! upload deadline has passed (announced but never uploaded does not count); a case
//! closed by an action marked "closes the case" and still without an archive record
//! after 30 calendar days in the agencies' time zone is flagged "archive overdue".
//! Flags are stored, shown with the case, cleared (not deleted) when resolved, and kept
//! across a restart.

use protocol::chain::ChainHead;
use protocol::domain::Stage;
use store::recordings::CaseFlagKind;
use test_support::backends;
use uuid::Uuid;

use crate::support::{Fixture, H, T0, announcement, content, push_records, record, upload_from};

const DAY: i64 = 24 * H;

fn open(flags: &[store::recordings::CaseFlag]) -> Vec<(CaseFlagKind, String)> {
    flags
        .iter()
        .filter(|f| f.cleared_at.is_none())
        .map(|f| (f.kind, f.subject.clone()))
        .collect()
}

#[tokio::test]
async fn a_seizure_without_a_covering_recording_is_flagged_after_the_deadline() {
    for backend in backends().await {
        let fx = Fixture::start_with(&backend, |c| c.deadline_check_secs = 3600).await;
        let (device, _) = fx.gw.device(1);
        let conn = fx.device(1, 0).await;
        // A recording from T0 − 1 h to T0, uploaded; the same span announced but never
        // uploaded; and one two hours earlier.
        let covering_bytes = content(40, 100);
        let covering = announcement(&covering_bytes, T0);
        let promised = announcement(&content(43, 100), T0);
        let earlier = announcement(&content(41, 100), T0 - 2 * H);
        for a in [&covering, &promised, &earlier] {
            conn.announce_recording(a.clone()).await.unwrap();
        }
        upload_from(&conn, covering.recording_id, &covering_bytes, 0, 64)
            .await
            .unwrap();
        let late_id = Uuid::new_v4();
        push_records(
            &conn,
            &device,
            ChainHead::GENESIS,
            vec![
                record(
                    "C-1",
                    Stage::ServiceExecution,
                    "seizure",
                    T0,
                    vec![covering.recording_id],
                ),
                record("C-2", Stage::ServiceExecution, "seizure", T0, vec![]),
                record(
                    "C-3",
                    Stage::ServiceExecution,
                    "forced_demolition",
                    T0,
                    vec![earlier.recording_id],
                ),
                record("C-4", Stage::Investigation, "inspection", T0, vec![]),
                record("C-5", Stage::ServiceExecution, "seizure", T0, vec![late_id]),
                record(
                    "C-6",
                    Stage::ServiceExecution,
                    "seizure",
                    T0,
                    vec![promised.recording_id],
                ),
            ],
        )
        .await;
        let store = &fx.state().store;

        fx.clock.advance(DAY);
        fx.evaluate().await;
        assert!(
            store
                .open_case_flags(CaseFlagKind::MissingAudioVideo)
                .await
                .unwrap()
                .is_empty(),
            "not before the deadline has passed"
        );
        fx.clock.advance(1);
        let pass = fx.evaluate().await;
        assert_eq!(pass.case_flags_raised, 4, "{}", backend.name());
        assert!(
            store.case_flags("C-1").await.unwrap().is_empty(),
            "covered by its recording"
        );
        assert!(
            store.case_flags("C-4").await.unwrap().is_empty(),
            "not a full-process kind"
        );
        let c2 = store.case_flags("C-2").await.unwrap();
        assert_eq!(
            open(&c2),
            vec![(CaseFlagKind::MissingAudioVideo, "dev-00001/2".to_owned())]
        );
        assert_eq!(c2[0].due_at, T0 + DAY);
        assert!(c2[0].detail.contains("seizure"), "{}", c2[0].detail);
        assert_eq!(
            open(&store.case_flags("C-3").await.unwrap()).len(),
            1,
            "linked but not covering"
        );
        assert_eq!(
            open(&store.case_flags("C-5").await.unwrap()).len(),
            1,
            "linked, never announced"
        );
        assert_eq!(
            open(&store.case_flags("C-6").await.unwrap()).len(),
            1,
            "covering on paper, announced but never uploaded"
        );
        let metrics = fx.gw.metrics_text().await;
        assert!(
            metrics.contains("fieldsync_case_flags_open{flag=\"missing_audio_video\"} 4"),
            "{metrics}"
        );
        // Raised once.
        assert_eq!(fx.evaluate().await.case_flags_raised, 0);

        // The linked recording of C-5 turns up late, covers the record and is uploaded:
        // resolved.
        let found_bytes = content(42, 100);
        let mut found = announcement(&found_bytes, T0 + H);
        found.recording_id = late_id;
        conn.announce_recording(found).await.unwrap();
        fx.evaluate().await;
        assert!(
            store.case_flags("C-5").await.unwrap()[0]
                .cleared_at
                .is_none(),
            "announced is not stored"
        );
        upload_from(&conn, late_id, &found_bytes, 0, 64)
            .await
            .unwrap();
        fx.evaluate().await;
        let c5 = store.case_flags("C-5").await.unwrap();
        assert_eq!(c5.len(), 1, "kept as history");
        assert!(c5[0].cleared_at.is_some());

        drop(conn);
        let fx = fx.restart().await;
        let store = &fx.state().store;
        assert_eq!(
            open(&store.case_flags("C-2").await.unwrap()).len(),
            1,
            "kept across a restart"
        );
        assert_eq!(
            store
                .open_case_flags(CaseFlagKind::MissingAudioVideo)
                .await
                .unwrap()
                .len(),
            3
        );
        fx.gw.gateway.shutdown().await;
    }
}

/// The end of the archive period of a case closed at [`T0`] (2026-09-21 22:13 CST): day
/// 30 after 21 September is 21 October, whose 24:00 CST is 2026-10-21T16:00Z. Counting
/// 720 hours from the record instead would end it at 22:13 CST on 21 October.
const ARCHIVE_DUE: i64 = 1_792_598_400_000;

#[tokio::test]
async fn a_case_not_archived_30_days_after_it_closed_is_flagged_until_archived() {
    for backend in backends().await {
        let fx = Fixture::start_with(&backend, |c| c.deadline_check_secs = 3600).await;
        let (device, _) = fx.gw.device(1);
        let conn = fx.device(1, 0).await;
        let head = push_records(
            &conn,
            &device,
            ChainHead::GENESIS,
            vec![
                record(
                    "A-1",
                    Stage::ServiceExecution,
                    "penalty_execution",
                    T0,
                    vec![],
                ),
                record("A-2", Stage::ReviewDecision, "case_termination", T0, vec![]),
                record("A-2", Stage::Archive, "archive", T0, vec![]),
                record("A-3", Stage::Investigation, "inspection", T0, vec![]),
                // A decision not to penalise ends the case too (DOMAIN R3).
                record(
                    "A-4",
                    Stage::ReviewDecision,
                    "no_penalty_decision",
                    T0,
                    vec![],
                ),
                // Service of documents does not close a case.
                record("A-5", Stage::ServiceExecution, "service", T0, vec![]),
            ],
        )
        .await;
        let store = &fx.state().store;
        // 720 hours later is still the 30th day in China Standard Time.
        fx.clock.set(T0 + 30 * DAY + 1);
        fx.evaluate().await;
        fx.clock.set(ARCHIVE_DUE - 1);
        fx.evaluate().await;
        assert!(
            store.case_flags("A-1").await.unwrap().is_empty(),
            "the 30th day is still in time until its 24:00"
        );
        fx.clock.set(ARCHIVE_DUE);
        fx.evaluate().await;
        let flags = store.case_flags("A-1").await.unwrap();
        assert_eq!(
            open(&flags),
            vec![(CaseFlagKind::ArchiveOverdue, "A-1".to_owned())],
            "{}",
            backend.name()
        );
        assert_eq!(flags[0].due_at, ARCHIVE_DUE);
        assert!(
            store.case_flags("A-2").await.unwrap().is_empty(),
            "archived"
        );
        for (case, why) in [("A-3", "not closed"), ("A-5", "service does not close")] {
            assert!(store.case_flags(case).await.unwrap().is_empty(), "{why}");
        }
        assert_eq!(
            open(&store.case_flags("A-4").await.unwrap()).len(),
            1,
            "closed without penalty"
        );

        // The archive record arrives: the flag is cleared and kept.
        push_records(
            &conn,
            &device,
            head,
            vec![record(
                "A-1",
                Stage::Archive,
                "archive",
                ARCHIVE_DUE + 1,
                vec![],
            )],
        )
        .await;
        fx.evaluate().await;
        let flags = store.case_flags("A-1").await.unwrap();
        assert_eq!(flags.len(), 1);
        assert!(flags[0].cleared_at.is_some());
        fx.gw.gateway.shutdown().await;
    }
}
