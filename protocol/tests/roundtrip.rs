//! Property tests of the wire format: every message survives encode → frame → decode,
//! and the decoder returns an error (never panics) on truncated, oversized, random and
//! malformed input.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use protocol::chain::ChainHead;
use protocol::domain::{CertificateStatus, Stage};
use protocol::frame::{FrameDecoder, FrameError, encode_frame};
use protocol::message::*;
use protocol::two_officer::{NotCounted, NotCountedReason};
use protocol::{DeviceId, ErrorCode, ErrorReply, Limits, Sha256Hash};
use uuid::Uuid;

const MAX: u32 = 1 << 20;

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn hash() -> impl Strategy<Value = Sha256Hash> {
    any::<[u8; 32]>().prop_map(Sha256Hash)
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn stage() -> impl Strategy<Value = Stage> {
    prop::sample::select(Stage::ALL.to_vec())
}

fn cert_status() -> impl Strategy<Value = CertificateStatus> {
    prop::sample::select(CertificateStatus::ALL.to_vec())
}

fn verdict() -> impl Strategy<Value = IdentityVerdict> {
    prop_oneof![
        Just(IdentityVerdict::Valid),
        Just(IdentityVerdict::Withdrawn),
        Just(IdentityVerdict::Revoked),
        Just(IdentityVerdict::Unknown),
    ]
}

fn content() -> impl Strategy<Value = RecordContent> {
    (
        (text(), text(), stage(), text(), text()),
        vec(text(), 0..4),
        option::of(text()),
        option::of(
            (any::<i32>(), any::<i32>())
                .prop_map(|(lat_e6, lon_e6)| Coordinates { lat_e6, lon_e6 }),
        ),
        any::<i64>(),
        vec(uuid(), 0..3),
        option::of(any::<u64>()),
    )
        .prop_map(
            |(
                (case_number, target, stage, action_kind, text),
                officers,
                location,
                coordinates,
                made_at,
                recordings,
                corrects,
            )| {
                RecordContent {
                    case_number,
                    target,
                    stage,
                    action_kind,
                    text,
                    officers,
                    location,
                    coordinates,
                    made_at,
                    recordings,
                    corrects,
                }
            },
        )
}

fn record() -> impl Strategy<Value = FieldRecord> {
    (any::<u64>(), hash(), hash(), content()).prop_map(
        |(sequence, previous_hash, hash, content)| FieldRecord {
            sequence,
            previous_hash,
            hash,
            content,
        },
    )
}

fn identity_check() -> impl Strategy<Value = IdentityCheck> {
    (
        uuid(),
        text(),
        any::<i64>(),
        option::of(text()),
        option::of(text()),
        option::of(
            (verdict(), any::<u64>()).prop_map(|(verdict, roster_version)| OfflineAnswer {
                verdict,
                roster_version,
            }),
        ),
    )
        .prop_map(
            |(check_id, certificate_number, checked_at, location, case_number, offline)| {
                IdentityCheck {
                    check_id,
                    certificate_number,
                    checked_at,
                    location,
                    case_number,
                    offline,
                }
            },
        )
}

fn roster_entry() -> impl Strategy<Value = RosterEntry> {
    (
        text(),
        text(),
        text(),
        text(),
        text(),
        cert_status(),
        any::<u64>(),
        any::<bool>(),
        any::<Option<i64>>(),
    )
        .prop_map(
            |(
                certificate_number,
                name,
                unit,
                post,
                category,
                status,
                version,
                auxiliary,
                valid_until,
            )| RosterEntry {
                certificate_number,
                name,
                unit,
                post,
                category,
                status,
                version,
                auxiliary,
                valid_until,
            },
        )
}

fn announcement() -> impl Strategy<Value = RecordingAnnouncement> {
    (
        uuid(),
        hash(),
        any::<u64>(),
        prop_oneof![Just(MediaKind::Audio), Just(MediaKind::Video)],
        any::<i64>(),
        any::<i64>(),
        option::of(text()),
        option::of(text()),
    )
        .prop_map(
            |(recording_id, sha256, size, media, started_at, ended_at, case_number, officer)| {
                RecordingAnnouncement {
                    recording_id,
                    sha256,
                    size,
                    media,
                    started_at,
                    ended_at,
                    case_number,
                    officer,
                }
            },
        )
}

fn request_body() -> impl Strategy<Value = RequestBody> {
    prop_oneof![
        (any::<i64>(), text(), prop::option::of(hash())).prop_map(
            |(device_time, agent_version, rules_digest)| RequestBody::Hello(Hello {
                device_time,
                agent_version,
                rules_digest,
            })
        ),
        vec(record(), 0..3).prop_map(|records| RequestBody::PushRecords(PushRecords { records })),
        identity_check().prop_map(RequestBody::CheckIdentity),
        vec(identity_check(), 0..3)
            .prop_map(|checks| RequestBody::PushIdentityChecks(PushIdentityChecks { checks })),
        any::<u64>().prop_map(|version| RequestBody::RosterSince(RosterSince { version })),
        announcement().prop_map(RequestBody::AnnounceRecording),
        uuid()
            .prop_map(|recording_id| RequestBody::UploadOffset(UploadOffsetQuery { recording_id })),
        (uuid(), any::<u64>(), any::<u64>()).prop_map(|(recording_id, offset, length)| {
            RequestBody::UploadChunk(UploadHeader {
                recording_id,
                offset,
                length,
            })
        }),
        any::<u64>().prop_map(|after| RequestBody::FlagsSince(FlagsSince { after })),
    ]
}

fn flag_change() -> impl Strategy<Value = FlagChange> {
    (
        (any::<u64>(), any::<u64>(), text(), any::<bool>()),
        (any::<u32>(), any::<u32>(), vec(text(), 0..3)),
        (text(), option::of(text()), any::<i64>()),
    )
        .prop_map(
            |(
                (id, sequence, action_kind, raised),
                (certified, required, numbers),
                (cause, cause_ref, at),
            )| {
                FlagChange {
                    id,
                    sequence,
                    action_kind,
                    raised,
                    certified,
                    required,
                    not_counted: numbers
                        .into_iter()
                        .map(|certificate_number| NotCounted {
                            certificate_number,
                            reason: NotCountedReason::Withdrawn,
                        })
                        .collect(),
                    cause,
                    cause_ref,
                    at,
                }
            },
        )
}

fn reject_reason() -> impl Strategy<Value = RejectReason> {
    prop_oneof![
        any::<u64>().prop_map(|expected| RejectReason::Gap { expected }),
        Just(RejectReason::Fork),
        Just(RejectReason::Altered),
        Just(RejectReason::BrokenLink),
        text().prop_map(|problem| RejectReason::Invalid { problem }),
        (text(), prop::collection::vec(text(), 0..4)).prop_map(|(action_kind, known)| {
            RejectReason::UnknownActionKind { action_kind, known }
        }),
    ]
}

fn record_outcome() -> impl Strategy<Value = RecordOutcome> {
    prop_oneof![
        Just(RecordOutcome::Stored),
        Just(RecordOutcome::Duplicate),
        reject_reason().prop_map(RecordOutcome::Rejected),
    ]
}

fn check_outcome() -> impl Strategy<Value = CheckOutcome> {
    prop_oneof![
        Just(CheckOutcome::Stored),
        Just(CheckOutcome::Duplicate),
        text().prop_map(CheckOutcome::Rejected),
    ]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        "[a-z0-9-]{1,20}",
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
        any::<u64>(),
        hash(),
        any::<u32>(),
    )
        .prop_map(
            |(
                id,
                gateway_time,
                clock_skew_ms,
                roster_version,
                next_sequence,
                last_hash,
                max_frame_bytes,
            )| Welcome {
                device_id: DeviceId::new(id).unwrap(),
                gateway_time,
                clock_skew_ms,
                limits: Limits {
                    max_frame_bytes,
                    ..Limits::default()
                },
                roster_version,
                chain: ChainHead {
                    next_sequence,
                    last_hash,
                },
                rules: (next_sequence % 2 == 0).then(|| protocol::message::DeviceRules {
                    action_kinds: protocol::action_kind::ActionKinds::default(),
                    min_officers: max_frame_bytes,
                    clock_tolerance_ms: gateway_time,
                }),
            },
        )
}

fn response_body() -> impl Strategy<Value = ResponseBody> {
    prop_oneof![
        welcome().prop_map(ResponseBody::Welcome),
        vec(
            (any::<u64>(), record_outcome())
                .prop_map(|(sequence, outcome)| RecordAck { sequence, outcome }),
            0..4
        )
        .prop_map(|acks| ResponseBody::RecordAcks(RecordAcks { acks })),
        (uuid(), verdict(), option::of(roster_entry()), any::<u64>()).prop_map(
            |(check_id, verdict, officer, roster_version)| ResponseBody::IdentityResult(
                IdentityResult {
                    check_id,
                    verdict,
                    officer,
                    roster_version
                }
            )
        ),
        vec((uuid(), check_outcome()), 0..4)
            .prop_map(|acks| ResponseBody::IdentityCheckAcks(IdentityCheckAcks { acks })),
        (
            any::<u64>(),
            any::<u64>(),
            vec(roster_entry(), 0..3),
            any::<bool>()
        )
            .prop_map(|(from_version, to_version, entries, more)| {
                ResponseBody::RosterDelta(RosterDelta {
                    from_version,
                    to_version,
                    entries,
                    more,
                })
            }),
        (uuid(), any::<i64>(), any::<u64>(), any::<bool>()).prop_map(
            |(recording_id, deadline, offset, stored)| {
                ResponseBody::RecordingTracked(RecordingTracked {
                    recording_id,
                    deadline,
                    offset,
                    stored,
                })
            }
        ),
        (uuid(), any::<u64>(), any::<bool>()).prop_map(|(recording_id, offset, stored)| {
            ResponseBody::UploadOffset(UploadOffset {
                recording_id,
                offset,
                stored,
            })
        }),
        (uuid(), hash(), any::<i64>()).prop_map(|(recording_id, sha256, stored_at)| {
            ResponseBody::RecordingStored(RecordingStored {
                recording_id,
                sha256,
                stored_at,
            })
        }),
        (vec(flag_change(), 0..3), any::<bool>())
            .prop_map(|(changes, more)| ResponseBody::FlagChanges(FlagChanges { changes, more })),
        (any::<u16>(), text()).prop_map(|(code, message)| ResponseBody::Error(ErrorReply::new(
            ErrorCode::from(code),
            message
        ))),
    ]
}

fn frame_round_trip<T: Versioned + PartialEq + std::fmt::Debug>(message: &T) {
    let frame = encode_frame(message, MAX).unwrap();
    let mut buf = BytesMut::from(&frame[..]);
    let decoded: T = FrameDecoder::new(MAX)
        .decode_message(&mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(&decoded, message);
    assert!(buf.is_empty());
}

proptest! {
    #[test]
    fn every_request_round_trips(body in request_body()) {
        frame_round_trip(&Request::new(body));
    }

    #[test]
    fn every_response_round_trips(body in response_body()) {
        frame_round_trip(&Response::new(body));
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = FrameDecoder::new(256).decode_message::<Request>(&mut buf);
        let _ = decode_body::<Request>(&bytes);
        let _ = decode_body::<Response>(&bytes);
    }

    #[test]
    fn truncated_frames_are_incomplete_not_wrong(body in request_body(), cut in any::<prop::sample::Index>()) {
        let frame = encode_frame(&Request::new(body), MAX).unwrap();
        let cut = cut.index(frame.len());
        let mut buf = BytesMut::from(&frame[..cut]);
        let decoder = FrameDecoder::new(MAX);
        prop_assert!(decoder.decode_message::<Request>(&mut buf).unwrap().is_none());
        prop_assert!(cut == 0 || decoder.finish(&buf).is_err());
    }

    #[test]
    fn corrupted_bodies_error_or_decode_but_never_panic(body in request_body(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let frame = encode_frame(&Request::new(body), MAX).unwrap();
        let mut bytes = frame.to_vec();
        for (at, value) in flips {
            let i = 4 + at.index(bytes.len() - 4);
            bytes[i] = value;
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = FrameDecoder::new(MAX).decode_message::<Request>(&mut buf);
    }

    #[test]
    fn oversized_lengths_are_refused(length in 257u32..) {
        let mut buf = BytesMut::from(&length.to_be_bytes()[..]);
        let refused = matches!(FrameDecoder::new(256).decode_frame(&mut buf), Err(FrameError::TooLarge { .. }));
        prop_assert!(refused);
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut body = encode_body(&Request::new(RequestBody::RosterSince(RosterSince {
        version: 3,
    })));
    body.push(0);
    assert_eq!(
        decode_body::<Request>(&body),
        Err(DecodeError::TrailingBytes(1))
    );
}

#[test]
fn an_unknown_version_gets_a_clear_error() {
    let mut request = Request::new(RequestBody::RosterSince(RosterSince { version: 3 }));
    request.version = 9;
    let err = decode_body::<Request>(&encode_body(&request)).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 9 });
    assert_eq!(err.code(), ErrorCode::UnsupportedVersion);

    #[derive(serde::Serialize)]
    struct Future {
        version: u16,
        body: &'static str,
    }
    let err = decode_body::<Request>(&encode_body(&Future {
        version: 2,
        body: "teleport",
    }))
    .unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 2 });
}

#[test]
fn a_reply_sent_as_a_request_is_malformed() {
    let reply = Response::error(ErrorCode::Busy, "x");
    let err = decode_body::<Request>(&encode_body(&reply)).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)));
}
