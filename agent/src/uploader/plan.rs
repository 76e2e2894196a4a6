//! The upload order, pure: earliest deadline first (DOMAIN R2: every recording must
//! be stored within 24 hours of its end, so the one closest to breaking the rule goes
//! first).

use protocol::Millis;

use crate::outbox::recordings::{DEFAULT_DEADLINE_HOURS, LocalRecording};

/// The deadline a recording is uploaded by, on the device's clock: the gateway's
/// (skew-corrected back to device time) once announced, else end + 24 h.
pub fn device_deadline(r: &LocalRecording, clock_skew_ms: i64) -> Millis {
    match r.gateway_deadline {
        Some(d) => d.saturating_sub(clock_skew_ms),
        None => r
            .ended_at
            .saturating_add(DEFAULT_DEADLINE_HOURS * 3_600_000),
    }
}

/// Pending recordings in upload order: earliest deadline first (ties: earlier end,
/// then id, so the order is stable).
pub fn upload_order(mut pending: Vec<LocalRecording>, clock_skew_ms: i64) -> Vec<LocalRecording> {
    pending.sort_by(|a, b| {
        device_deadline(a, clock_skew_ms)
            .cmp(&device_deadline(b, clock_skew_ms))
            .then(a.ended_at.cmp(&b.ended_at))
            .then(a.recording_id.cmp(&b.recording_id))
    });
    pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::recordings::RecordingState;
    use protocol::Sha256Hash;
    use protocol::message::MediaKind;
    use uuid::Uuid;

    fn rec(id: u128, ended_at: Millis, gateway_deadline: Option<Millis>) -> LocalRecording {
        LocalRecording {
            recording_id: Uuid::from_u128(id),
            path: "x".into(),
            source: None,
            sha256: Sha256Hash::ZERO,
            size: 10,
            media: MediaKind::Video,
            started_at: 0,
            ended_at,
            case_number: None,
            officer: None,
            state: RecordingState::Pending,
            announced: gateway_deadline.is_some(),
            gateway_deadline,
            gateway_offset: 0,
            stored_at: None,
            reason: None,
        }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn earliest_deadline_goes_first() {
        let order = upload_order(
            vec![
                rec(1, 10 * H, None),
                rec(2, 2 * H, None),
                rec(3, 5 * H, None),
            ],
            0,
        );
        let ids: Vec<_> = order.iter().map(|r| r.recording_id.as_u128()).collect();
        assert_eq!(ids, [2, 3, 1]);
    }

    #[test]
    fn the_gateway_deadline_counts_once_known_corrected_for_skew() {
        // Recording 1 ended later, but the gateway's policy gives it an earlier deadline
        // (a shorter deadline configured there); the device clock is 2 h slow.
        let skew = 2 * H;
        let a = rec(1, 10 * H, Some(12 * H + skew));
        let b = rec(2, 5 * H, None); // device deadline 29 h
        let order = upload_order(vec![b, a], skew);
        assert_eq!(order[0].recording_id.as_u128(), 1);
        assert_eq!(device_deadline(&order[0], skew), 12 * H);
    }

    #[test]
    fn ties_are_broken_stably() {
        let order = upload_order(vec![rec(9, H, None), rec(4, H, None)], 0);
        assert_eq!(order[0].recording_id.as_u128(), 4);
    }
}
