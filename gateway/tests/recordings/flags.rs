//! Full-process recording (DOMAIN R3): a record of a full-process action kind with no
//! linked recording covering its time is flagged "missing audio-video" once its upload
//! deadline has passed; a case whose execution ended more than 30 days ago without an
//! archive record is flagged "archive overdue". Flags are stored, shown with the case,
//! cleared (not deleted) when resolved, and kept across a restart.

use gateway::store::recordings::CaseFlagKind;
use protocol::chain::ChainHead;
use protocol::domain::Stage;
use test_support::backends;
use uuid::Uuid;

use crate::support::{Fixture, H, T0, announcement, content, push_records, record};

const DAY: i64 = 24 * H;

fn open(flags: &[gateway::store::recordings::CaseFlag]) -> Vec<(CaseFlagKind, String)> {
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
        // A recording from T0 − 30 min to T0 + 30 min, and one two hours earlier.
        let covering = announcement(&content(40, 100), T0 + H / 2);
        let earlier = announcement(&content(41, 100), T0 - 2 * H);
        conn.announce_recording(covering.clone()).await.unwrap();
        conn.announce_recording(earlier.clone()).await.unwrap();
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
        assert_eq!(pass.case_flags_raised, 3, "{}", backend.name());
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
        let metrics = fx.gw.metrics_text().await;
        assert!(
            metrics.contains("fieldsync_case_flags_open{flag=\"missing_audio_video\"} 3"),
            "{metrics}"
        );
        // Raised once.
        assert_eq!(fx.evaluate().await.case_flags_raised, 0);

        // The linked recording of C-5 turns up late and covers the record: resolved.
        let mut found = announcement(&content(42, 100), T0 + H);
        found.recording_id = late_id;
        conn.announce_recording(found).await.unwrap();
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
            2
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_case_not_archived_30_days_after_execution_is_flagged_until_archived() {
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
                    "service_by_leaving",
                    T0,
                    vec![],
                ),
                record(
                    "A-2",
                    Stage::ServiceExecution,
                    "service_by_leaving",
                    T0,
                    vec![],
                ),
                record("A-2", Stage::Archive, "archive", T0 + DAY, vec![]),
                record("A-3", Stage::Investigation, "inspection", T0, vec![]),
            ],
        )
        .await;
        fx.clock.advance(30 * DAY);
        fx.evaluate().await;
        let store = &fx.state().store;
        assert!(
            store.case_flags("A-1").await.unwrap().is_empty(),
            "30 days is still in time"
        );
        fx.clock.advance(1);
        fx.evaluate().await;
        let flags = store.case_flags("A-1").await.unwrap();
        assert_eq!(
            open(&flags),
            vec![(CaseFlagKind::ArchiveOverdue, "A-1".to_owned())],
            "{}",
            backend.name()
        );
        assert_eq!(flags[0].due_at, T0 + 30 * DAY);
        assert!(
            store.case_flags("A-2").await.unwrap().is_empty(),
            "archived"
        );
        assert!(
            store.case_flags("A-3").await.unwrap().is_empty(),
            "no execution yet"
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
                T0 + 30 * DAY + 1,
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
