//! Deadline states on gateway time (a manual clock): pending → due soon → overdue as
//! time passes, uploaded on time or late, skew correction, silent devices, the overdue
//! gauge on `/metrics`, every change recorded, and all of it kept across a restart.

use std::time::Duration;

use agent::transport::UploadReply;
use protocol::deadline::UploadState;
use test_support::{Backend, backends, eventually};

use crate::support::{Fixture, H, T0, announcement, content, row, upload_from};

fn states(changes: &[store::StateChange]) -> Vec<(Option<UploadState>, UploadState)> {
    changes.iter().map(|c| (c.from, c.to)).collect()
}

async fn gauge(fx: &Fixture, name: &str) -> Option<i64> {
    let text = fx.gw.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn states_move_as_time_passes_every_change_is_recorded_and_a_restart_keeps_them() {
    for backend in backends().await {
        let fx = Fixture::start_with(&backend, |c| c.deadline_check_secs = 3600).await;
        let conn = fx.device(1, 0).await;
        let bytes = content(30, 10_000);
        let ann = announcement(&bytes, T0);
        let id = ann.recording_id;
        conn.announce_recording(ann.clone()).await.unwrap();
        assert_eq!(row(&fx, id).await.state, UploadState::Pending);

        fx.clock.advance(20 * H - 1);
        fx.evaluate().await;
        assert_eq!(
            row(&fx, id).await.state,
            UploadState::Pending,
            "{}",
            backend.name()
        );
        fx.clock.advance(1);
        fx.evaluate().await;
        assert_eq!(
            row(&fx, id).await.state,
            UploadState::DueSoon,
            "due soon 4 h before"
        );
        assert_eq!(gauge(&fx, "fieldsync_recordings_overdue").await, Some(0));
        fx.clock.advance(4 * H);
        fx.evaluate().await;
        assert_eq!(
            row(&fx, id).await.state,
            UploadState::DueSoon,
            "the deadline instant is in time"
        );
        fx.clock.advance(1);
        let pass = fx.evaluate().await;
        assert_eq!(pass.overdue, 1);
        assert_eq!(row(&fx, id).await.state, UploadState::Overdue);
        assert_eq!(gauge(&fx, "fieldsync_recordings_overdue").await, Some(1));
        // A second pass changes nothing and records nothing.
        fx.evaluate().await;
        let history = fx.state().store.recording_state_changes(id).await.unwrap();
        assert_eq!(
            states(&history),
            vec![
                (None, UploadState::Pending),
                (Some(UploadState::Pending), UploadState::DueSoon),
                (Some(UploadState::DueSoon), UploadState::Overdue),
            ]
        );
        assert_eq!(history[2].at, T0 + 24 * H + 1);

        drop(conn);
        let fx = fx.restart().await;
        assert_eq!(
            row(&fx, id).await.state,
            UploadState::Overdue,
            "a restart keeps every state"
        );
        let pass = fx.evaluate().await;
        assert!(pass.state_changes.is_empty());
        assert_eq!(gauge(&fx, "fieldsync_recordings_overdue").await, Some(1));
        assert_eq!(
            fx.state().store.recording_state_changes(id).await.unwrap(),
            history,
            "the history survives the restart unchanged"
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_recording_that_ended_25_hours_ago_on_an_offline_agent_is_overdue_then_uploaded_late() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        // The agent was offline the whole time: it connects now for the first time.
        let conn = fx.device(1, 0).await;
        let bytes = content(31, 50_000);
        let ann = announcement(&bytes, T0 - 25 * H);
        let tracked = conn.announce_recording(ann.clone()).await.unwrap();
        assert_eq!(tracked.deadline, T0 - H);
        assert_eq!(row(&fx, ann.recording_id).await.state, UploadState::Overdue);
        let pass = fx.evaluate().await;
        assert_eq!(pass.overdue, 1, "{}", backend.name());
        assert_eq!(gauge(&fx, "fieldsync_recordings_overdue").await, Some(1));

        fx.clock.advance(10 * 60_000);
        let reply = upload_from(&conn, ann.recording_id, &bytes, 0, 20_000)
            .await
            .unwrap();
        let UploadReply::Stored(stored) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(stored.stored_at, T0 + 10 * 60_000);
        let r = row(&fx, ann.recording_id).await;
        assert_eq!(r.state, UploadState::UploadedLate);
        assert_eq!(
            protocol::deadline::lateness(r.deadline, r.stored_at.unwrap()),
            H + 10 * 60_000
        );
        assert_eq!(fx.evaluate().await.overdue, 0);
        assert_eq!(gauge(&fx, "fieldsync_recordings_overdue").await, Some(0));
        let history = fx
            .state()
            .store
            .recording_state_changes(ann.recording_id)
            .await
            .unwrap();
        assert_eq!(
            states(&history),
            vec![
                (None, UploadState::Overdue),
                (Some(UploadState::Overdue), UploadState::UploadedLate)
            ]
        );
        // Later passes never move a final state.
        fx.clock.advance(100 * H);
        fx.evaluate().await;
        assert_eq!(
            row(&fx, ann.recording_id).await.state,
            UploadState::UploadedLate
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_device_clock_two_hours_fast_does_not_move_the_deadline() {
    let fx = Fixture::start(&Backend::Sqlite).await;
    // The device's clock reads two hours ahead of the gateway's.
    let conn = fx.device(1, 2 * H).await;
    let bytes = content(32, 1000);
    // It ended an hour ago in true time: the device stamps it an hour ahead.
    let ann = announcement(&bytes, T0 - H + 2 * H);
    let tracked = conn.announce_recording(ann.clone()).await.unwrap();
    assert_eq!(
        tracked.deadline,
        T0 + 23 * H,
        "the deadline runs from the true end"
    );
    let r = row(&fx, ann.recording_id).await;
    assert_eq!(
        (r.ended_at, r.ended_at_device, r.clock_skew_ms),
        (T0 - H, T0 + H, -2 * H)
    );
    assert_eq!(r.started_at, T0 - 2 * H);
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn stored_before_the_deadline_is_on_time_for_good() {
    let fx = Fixture::start(&Backend::Sqlite).await;
    let conn = fx.device(1, 0).await;
    let bytes = content(33, 5000);
    let ann = announcement(&bytes, T0);
    conn.announce_recording(ann.clone()).await.unwrap();
    fx.clock.advance(24 * H);
    let reply = upload_from(&conn, ann.recording_id, &bytes, 0, 5000)
        .await
        .unwrap();
    assert!(matches!(reply, UploadReply::Stored(_)));
    assert_eq!(
        row(&fx, ann.recording_id).await.state,
        UploadState::UploadedOnTime,
        "stored at the deadline instant"
    );
    fx.clock.advance(48 * H);
    fx.evaluate().await;
    assert_eq!(
        row(&fx, ann.recording_id).await.state,
        UploadState::UploadedOnTime
    );
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn a_device_silent_for_24_hours_is_flagged_and_cleared_when_it_syncs() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let _seen = fx.device(1, 0).await;
        fx.clock.advance(24 * H);
        let pass = fx.evaluate().await;
        assert_eq!(pass.silent_devices, 0, "exactly 24 h is not yet silent");
        fx.clock.advance(1);
        let pass = fx.evaluate().await;
        assert_eq!(pass.silent_devices, 3, "{}", backend.name());
        assert_eq!(pass.devices_flagged, 3);
        assert_eq!(gauge(&fx, "fieldsync_devices_silent").await, Some(3));
        let flags = fx.state().store.open_device_flags("silent").await.unwrap();
        assert_eq!(flags.len(), 3);
        assert_eq!(flags[0].since, T0, "device 1 was last seen at T0");
        // Flagged once, not again on the next pass.
        assert_eq!(fx.evaluate().await.devices_flagged, 0);
        // Device 2 syncs: its flag is cleared at the next pass.
        let _back = fx.device(2, 0).await;
        let pass = fx.evaluate().await;
        assert_eq!(pass.silent_devices, 2);
        let open: Vec<_> = fx
            .state()
            .store
            .open_device_flags("silent")
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.device_id.as_str().to_owned())
            .collect();
        assert_eq!(open, vec!["dev-00001", "dev-00003"]);
        let report = gateway::views::uploads::upload_report(
            &fx.state().store,
            &fx.state().config.policy.deadline,
            fx.clock_now(),
            i64::MIN,
        )
        .await
        .unwrap();
        let silent: Vec<_> = report
            .devices
            .iter()
            .filter(|d| d.silent_since.is_some())
            .map(|d| d.device_id.as_str())
            .collect();
        assert_eq!(
            silent,
            vec!["dev-00001", "dev-00003"],
            "the report shows who may hold recordings"
        );
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn the_watcher_moves_states_by_itself_as_gateway_time_passes() {
    let fx = Fixture::start_with(&Backend::Sqlite, |c| c.deadline_check_secs = 1).await;
    let conn = fx.device(1, 0).await;
    let ann = announcement(&content(34, 100), T0);
    conn.announce_recording(ann.clone()).await.unwrap();
    fx.clock.advance(25 * H);
    let store = fx.state().store.clone();
    let moved = eventually(Duration::from_secs(10), || async {
        store
            .recording(ann.recording_id)
            .await
            .unwrap()
            .unwrap()
            .state
            == UploadState::Overdue
    })
    .await;
    assert!(moved, "the watcher did not run");
    assert!(
        eventually(Duration::from_secs(10), || async {
            gauge(&fx, "fieldsync_recordings_overdue").await == Some(1)
        })
        .await
    );
    fx.gw.gateway.shutdown().await;
}

#[tokio::test]
async fn the_upload_report_counts_every_state_per_agency_officer_and_device() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let store = &fx.state().store;
        store
            .create_agency(
                &store::NewAgency {
                    name: "East District".into(),
                    class: protocol::domain::AgencyClass::A,
                    class_c_target: None,
                },
                "test",
                "test",
                T0,
            )
            .await
            .unwrap();
        let (dev1, _) = fx.gw.device(1);
        store
            .assign_device(
                &dev1,
                store::AssignmentChange {
                    agency: store::FieldChange::Set("East District"),
                    ..Default::default()
                },
                "test",
                "test",
                T0,
            )
            .await
            .unwrap();
        let one = fx.device(1, 0).await;
        let two = fx.device(2, 0).await;
        let late = content(35, 1000);
        let on_time = content(36, 1000);
        let pending = content(37, 1000);
        let overdue = content(38, 1000);
        let a_late = announcement(&late, T0 - 30 * H);
        let a_on_time = announcement(&on_time, T0 - 2 * H);
        let a_pending = announcement(&pending, T0 - H);
        let mut a_overdue = announcement(&overdue, T0 - 26 * H);
        a_overdue.officer = None;
        for a in [&a_late, &a_on_time, &a_pending] {
            one.announce_recording(a.clone()).await.unwrap();
        }
        two.announce_recording(a_overdue.clone()).await.unwrap();
        upload_from(&one, a_late.recording_id, &late, 0, 1000)
            .await
            .unwrap();
        upload_from(&one, a_on_time.recording_id, &on_time, 0, 1000)
            .await
            .unwrap();
        let report = gateway::views::uploads::upload_report(
            store,
            &fx.state().config.policy.deadline,
            T0,
            i64::MIN,
        )
        .await
        .unwrap();
        let t = report.total;
        assert_eq!(
            (
                t.pending,
                t.due_soon,
                t.overdue,
                t.uploaded_on_time,
                t.uploaded_late
            ),
            (1, 0, 1, 1, 1),
            "{}",
            backend.name()
        );
        assert_eq!(report.agencies.len(), 2);
        assert_eq!(report.agencies[0].agency, None);
        assert_eq!(report.agencies[0].counts.overdue, 1);
        assert_eq!(report.agencies[1].agency.as_deref(), Some("East District"));
        assert_eq!(report.agencies[1].counts.total(), 3);
        let officers: Vec<_> = report
            .officers
            .iter()
            .map(|o| (o.officer.clone(), o.counts.total()))
            .collect();
        assert_eq!(officers, vec![(None, 1), (Some("OFF-001".into()), 3)]);
        assert_eq!(report.devices.len(), 2);
        assert_eq!(report.overdue.len(), 1);
        assert_eq!(
            report.overdue[0].recording_id,
            a_overdue.recording_id.to_string()
        );
        assert_eq!(report.overdue[0].late_by_ms, 2 * H, "how late it is");
        assert_eq!(report.overdue[0].device_id, "dev-00002");
        fx.gw.gateway.shutdown().await;
    }
}
