//! Device clocks the gateway cannot trust (DOMAIN R2: "a corrected time can never lie
//! after the moment the gateway hears of it"): a recording or record whose corrected
//! time lies beyond the tolerance after it was heard of, or from a device whose skew
//! is beyond the bound, counts from when the gateway heard of it, and the device, the
//! recording and the record are flagged "clock implausible" (upload report, case view,
//! `/metrics`). A later hello with a plausible clock clears the device's flag; the
//! recordings and records keep theirs.

use gateway::views::cases::case_view;
use gateway::views::uploads::upload_report;
use protocol::Millis;
use protocol::chain::ChainHead;
use protocol::deadline::UploadState;
use protocol::domain::Stage;
use store::recordings::CLOCK_IMPLAUSIBLE;
use test_support::backends;

use crate::support::{Fixture, H, T0, announcement, content, push_records, record, row};

const MINUTE: Millis = 60_000;
/// 2000-01-01T00:00:00Z: where a device's clock lands after a reset.
const Y2000: Millis = 946_684_800_000;

async fn open_clock_flags(fx: &Fixture) -> Vec<String> {
    fx.state()
        .store
        .open_device_flags(CLOCK_IMPLAUSIBLE)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.device_id.to_string())
        .collect()
}

#[tokio::test]
async fn a_time_after_the_gateway_heard_of_it_counts_from_then_and_is_flagged() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let (device, _) = fx.gw.device(1);
        let conn = fx.device(1, 0).await;
        // Skew zero, but the recording says it ends two hours from now.
        let future = announcement(&content(60, 100), T0 + 2 * H);
        let tracked = conn.announce_recording(future.clone()).await.unwrap();
        assert_eq!(tracked.deadline, T0 + 24 * H, "{}", backend.name());
        let r = row(&fx, future.recording_id).await;
        assert!(r.clock_implausible);
        assert_eq!((r.started_at, r.ended_at), (T0 - H, T0), "shifted, not cut");
        assert_eq!(r.state, UploadState::Pending);
        // Within the tolerance (5 minutes by default): trusted as corrected.
        let near = announcement(&content(61, 100), T0 + 4 * MINUTE);
        conn.announce_recording(near.clone()).await.unwrap();
        let r = row(&fx, near.recording_id).await;
        assert!(!r.clock_implausible);
        assert_eq!(r.ended_at, T0 + 4 * MINUTE);
        assert_eq!(open_clock_flags(&fx).await, vec![device.to_string()]);

        // A record made "an hour from now" counts from its arrival.
        push_records(
            &conn,
            &device,
            ChainHead::GENESIS,
            vec![
                record("K-1", Stage::Investigation, "inspection", T0 + H, vec![]),
                record("K-1", Stage::Investigation, "inspection", T0 - H, vec![]),
            ],
        )
        .await;
        let state = fx.state();
        let view = case_view(&state.store, &state.config.policy, state.clock.now(), "K-1")
            .await
            .unwrap();
        let times: Vec<(Millis, bool)> = view
            .records
            .iter()
            .map(|r| (r.made_at_gateway, r.clock_implausible))
            .collect();
        assert_eq!(times, vec![(T0 - H, false), (T0, true)]);
        assert_eq!(view.summary.clock_implausible, 1);

        let policy = &fx.state().config.policy.deadline;
        let report = upload_report(&fx.state().store, policy, T0, Millis::MIN)
            .await
            .unwrap();
        assert_eq!(report.clock_implausible, 1);
        assert_eq!(report.devices[0].clock_implausible_since, Some(T0));
        fx.evaluate().await;
        let metrics = fx.gw.metrics_text().await;
        for line in [
            "fieldsync_devices_clock_implausible 1",
            "fieldsync_recordings_clock_implausible_total 1",
            "fieldsync_records_clock_implausible_total 1",
        ] {
            assert!(metrics.contains(line), "{line}");
        }

        // The next hello with a plausible clock clears the device's flag; the
        // recording keeps its own.
        drop(conn);
        fx.clock.advance(H);
        let _conn = fx.device(1, 0).await;
        assert!(open_clock_flags(&fx).await.is_empty());
        assert!(row(&fx, future.recording_id).await.clock_implausible);
        fx.gw.gateway.shutdown().await;
    }
}

#[tokio::test]
async fn a_clock_reset_to_2000_between_recording_and_sync_gains_nothing() {
    for backend in backends().await {
        let fx = Fixture::start(&backend).await;
        let (device, _) = fx.gw.device(2);
        // The recording ended two hours ago by a right clock; then the clock reset.
        let conn = fx.device(2, Y2000 - T0).await;
        assert_eq!(open_clock_flags(&fx).await, vec![device.to_string()]);
        let made = announcement(&content(62, 100), T0 - 2 * H);
        let tracked = conn.announce_recording(made.clone()).await.unwrap();
        assert_eq!(
            tracked.deadline,
            T0 + 24 * H,
            "{}: not decades away",
            backend.name()
        );
        // Stamped by the reset clock, a recording "of 1999" is not decades overdue
        // either: a skew this large is not corrected.
        let stamped = announcement(&content(63, 100), Y2000 - 2 * H);
        conn.announce_recording(stamped.clone()).await.unwrap();
        for id in [made.recording_id, stamped.recording_id] {
            let r = row(&fx, id).await;
            assert!(r.clock_implausible);
            assert_eq!((r.ended_at, r.deadline), (T0, T0 + 24 * H));
        }
        fx.clock.advance(24 * H + 1);
        fx.evaluate().await;
        assert_eq!(
            row(&fx, made.recording_id).await.state,
            UploadState::Overdue,
            "a day after the gateway heard of it"
        );
        fx.gw.gateway.shutdown().await;
    }
}
