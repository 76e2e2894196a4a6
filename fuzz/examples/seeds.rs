//! Writes the seed corpus: `cargo run -p fuzz --example seeds` (into `fuzz/corpus/`);
//! `-- --generated DIR` writes the seeds that are made afresh instead (CSRs: key
//! material is never committed) into `DIR/<target>/`.
//!
//! Seeds are small, real inputs: messages the agent and gateway send, files an
//! operator writes. Each is named `valid-*` or `invalid-*` after what its target must
//! make of it, and the replay test (`tests/corpus.rs`) holds it to that. Rerun this
//! after a protocol or file format change; files found by fuzzing are added by hand
//! and are not touched here.

use std::path::{Path, PathBuf};

use pki::EnrollmentRow;
use protocol::chain::ChainHead;
use protocol::codes::{ErrorCode, ErrorReply};
use protocol::domain::DeviceKind;
use protocol::frame::encode_frame;
use protocol::message::*;
use protocol::test_util::{numbered_content, seal_chain};
use protocol::{DeviceId, Limits, Sha256Hash, message::encode_body};
use time::macros::datetime;
use uuid::Uuid;

const RECORDING: Uuid = Uuid::from_u128(0x0190_aa51_7c3e_7b2a_9d1e_55aa_0000_0001);

fn device(id: &str) -> DeviceId {
    DeviceId::new(id).expect("a valid device id")
}

struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn put(&self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(dir.join(name), bytes).expect("seed written");
    }

    fn cbor(&self, target: &str, name: &str, body: &impl serde::Serialize) {
        self.put(target, name, encode_body(body));
    }
}

fn hello() -> Hello {
    Hello {
        device_time: 1_700_000_000_000,
        agent_version: "0.1.0".into(),
        rules_digest: None,
    }
}

fn announcement() -> RecordingAnnouncement {
    RecordingAnnouncement {
        recording_id: RECORDING,
        sha256: Sha256Hash::of(b"recording"),
        size: 9,
        media: MediaKind::Video,
        started_at: 1_700_000_000_000,
        ended_at: 1_700_000_060_000,
        case_number: Some("CASE-1".into()),
        officer: Some("ZF-001".into()),
    }
}

fn check(offline: bool) -> IdentityCheck {
    IdentityCheck {
        check_id: Uuid::from_u128(7),
        certificate_number: "ZF-001".into(),
        checked_at: 1_700_000_000_000,
        location: Some("No. 7 Market Street".into()),
        case_number: Some("CASE-1".into()),
        offline: offline.then_some(OfflineAnswer {
            verdict: IdentityVerdict::Valid,
            roster_version: 12,
        }),
    }
}

fn roster_entry() -> RosterEntry {
    RosterEntry {
        certificate_number: "ZF-001".into(),
        name: "张三".into(),
        unit: "市场监管局".into(),
        post: "执法员".into(),
        category: "市场监管".into(),
        status: protocol::domain::CertificateStatus::Valid,
        version: 12,
        auxiliary: false,
        valid_until: Some(1_800_000_000_000),
    }
}

fn frames(c: &Corpus) {
    let t = "frame_decoder";
    let frame = |m: &Request| encode_frame(m, 1 << 20).expect("a small frame");
    c.put(
        t,
        "valid-hello",
        frame(&Request::new(RequestBody::Hello(hello()))),
    );
    let (records, _) = seal_chain(
        &device("dev-00001"),
        ChainHead::GENESIS,
        [numbered_content(1)],
    );
    let mut two = frame(&Request::new(RequestBody::PushRecords(PushRecords {
        records,
    })))
    .to_vec();
    two.extend_from_slice(&frame(&Request::new(RequestBody::RosterSince(
        RosterSince { version: 3 },
    ))));
    c.put(t, "valid-push-then-roster", two);
    c.put(t, "invalid-too-large", u32::MAX.to_be_bytes());
    c.put(t, "invalid-empty-frame", 0u32.to_be_bytes());
    let hello = frame(&Request::new(RequestBody::Hello(hello())));
    c.put(t, "invalid-truncated", &hello[..hello.len() - 3]);
    let mut future = Request::new(RequestBody::Hello(self::hello()));
    future.version = 2;
    c.put(t, "invalid-version-2", frame(&future));
    // A reply kind is no request (a reply whose fields happen to fit a request's would
    // decode: messages ignore fields they do not know, for newer peers).
    let reply = encode_frame(
        &Response::new(ResponseBody::RecordAcks(RecordAcks { acks: vec![] })),
        1 << 20,
    )
    .expect("a small frame");
    c.put(t, "invalid-reply-as-request", reply);
}

fn requests(c: &Corpus) {
    let dev = device("dev-00001");
    c.cbor("request_hello", "valid-hello", &hello());
    c.cbor(
        "request_hello",
        "valid-with-rules-digest",
        &Hello {
            rules_digest: Some(Sha256Hash::of(b"rules")),
            ..hello()
        },
    );
    c.cbor(
        "request_hello",
        "invalid-long-agent-version",
        &Hello {
            agent_version: "v".repeat(Limits::default().max_field_bytes as usize + 1),
            ..hello()
        },
    );
    c.put(
        "request_hello",
        "invalid-trailing-byte",
        [encode_body(&hello()), vec![0]].concat(),
    );

    let (records, _) = seal_chain(&dev, ChainHead::GENESIS, (1..=3).map(numbered_content));
    c.cbor(
        "request_push_records",
        "valid-three-records",
        &PushRecords {
            records: records.clone(),
        },
    );
    let mut altered = records.clone();
    altered[1].content.text = "altered".into();
    c.cbor(
        "request_push_records",
        "invalid-altered-record",
        &PushRecords { records: altered },
    );
    c.cbor(
        "request_push_records",
        "invalid-gap",
        &PushRecords {
            records: vec![records[0].clone(), records[2].clone()],
        },
    );

    c.cbor("request_check_identity", "valid-online", &check(false));
    c.cbor(
        "request_check_identity",
        "invalid-long-number",
        &IdentityCheck {
            certificate_number: "9".repeat(300),
            ..check(false)
        },
    );
    c.cbor(
        "request_push_identity_checks",
        "valid-offline-checks",
        &PushIdentityChecks {
            checks: vec![
                check(true),
                IdentityCheck {
                    check_id: Uuid::from_u128(8),
                    ..check(true)
                },
            ],
        },
    );
    c.cbor(
        "request_roster_since",
        "valid-since-12",
        &RosterSince { version: 12 },
    );
    c.cbor("request_roster_since", "invalid-negative", &(-1i64));
    c.cbor("request_announce_recording", "valid-video", &announcement());
    c.cbor(
        "request_announce_recording",
        "invalid-ends-before-start",
        &RecordingAnnouncement {
            ended_at: 1,
            ..announcement()
        },
    );
    c.cbor(
        "request_upload_offset",
        "valid-query",
        &UploadOffsetQuery {
            recording_id: RECORDING,
        },
    );
    c.cbor(
        "request_upload_chunk",
        "valid-header",
        &UploadHeader {
            recording_id: RECORDING,
            offset: 4,
            length: 5,
        },
    );
    c.put("request_upload_chunk", "invalid-not-cbor", [0xff, 0x00]);
    c.cbor(
        "request_flags_since",
        "valid-after-41",
        &FlagsSince { after: 41 },
    );
    c.cbor(
        "request_flags_since",
        "invalid-text-cursor",
        &text_map(&[("after", "-1")]),
    );
}

fn responses(c: &Corpus) {
    let welcome = Welcome {
        device_id: device("dev-00001"),
        gateway_time: 1_700_000_000_100,
        clock_skew_ms: 100,
        limits: Limits::default(),
        roster_version: 12,
        chain: ChainHead::GENESIS,
        rules: Some(DeviceRules {
            action_kinds: Default::default(),
            min_officers: 2,
            clock_tolerance_ms: 300_000,
        }),
    };
    c.cbor("response_welcome", "valid-with-rules", &welcome);
    c.cbor(
        "response_welcome",
        "invalid-bad-device-id",
        &text_map(&[("device_id", "dev/1")]),
    );
    let acks = RecordAcks {
        acks: vec![
            RecordAck {
                sequence: 1,
                outcome: RecordOutcome::Stored,
            },
            RecordAck {
                sequence: 2,
                outcome: RecordOutcome::Duplicate,
            },
            RecordAck {
                sequence: 4,
                outcome: RecordOutcome::Rejected(RejectReason::Gap { expected: 3 }),
            },
            RecordAck {
                sequence: 5,
                outcome: RecordOutcome::Rejected(RejectReason::UnknownActionKind {
                    action_kind: "inspectoin".into(),
                    known: vec!["inspection".into()],
                }),
            },
        ],
    };
    c.cbor("response_record_acks", "valid-mixed-outcomes", &acks);
    c.cbor(
        "response_identity_result",
        "valid-known-officer",
        &IdentityResult {
            check_id: Uuid::from_u128(7),
            verdict: IdentityVerdict::Valid,
            officer: Some(roster_entry()),
            roster_version: 12,
        },
    );
    c.cbor(
        "response_identity_check_acks",
        "valid-acks",
        &IdentityCheckAcks {
            acks: vec![
                (Uuid::from_u128(7), CheckOutcome::Stored),
                (
                    Uuid::from_u128(8),
                    CheckOutcome::Rejected("location: too long".into()),
                ),
            ],
        },
    );
    c.cbor(
        "response_roster_delta",
        "valid-one-entry",
        &RosterDelta {
            from_version: 11,
            to_version: 12,
            entries: vec![roster_entry()],
            more: false,
        },
    );
    c.cbor(
        "response_recording_tracked",
        "valid-tracked",
        &RecordingTracked {
            recording_id: RECORDING,
            deadline: 1_700_086_400_000,
            offset: 0,
            stored: false,
        },
    );
    c.cbor(
        "response_upload_offset",
        "valid-offset",
        &UploadOffset {
            recording_id: RECORDING,
            offset: 4,
            stored: false,
        },
    );
    c.cbor(
        "response_flag_changes",
        "valid-raised-and-cleared",
        &FlagChanges {
            changes: vec![
                FlagChange {
                    id: 42,
                    sequence: 7,
                    action_kind: "seizure".into(),
                    raised: true,
                    certified: 1,
                    required: 2,
                    not_counted: vec![protocol::two_officer::NotCounted {
                        certificate_number: "ZF-0009".into(),
                        reason: protocol::two_officer::NotCountedReason::Withdrawn,
                    }],
                    cause: "registry".into(),
                    cause_ref: Some("ZF-0009".into()),
                    at: 1_700_000_200_000,
                },
                FlagChange {
                    id: 43,
                    sequence: 3,
                    action_kind: "seizure".into(),
                    raised: false,
                    certified: 2,
                    required: 2,
                    not_counted: vec![],
                    cause: "correction".into(),
                    cause_ref: Some("dev-00001/8".into()),
                    at: 1_700_000_300_000,
                },
            ],
            more: false,
        },
    );
    c.cbor(
        "response_flag_changes",
        "invalid-not-a-list",
        &text_map(&[("changes", "not a list")]),
    );
    c.cbor(
        "response_recording_stored",
        "valid-stored",
        &RecordingStored {
            recording_id: RECORDING,
            sha256: Sha256Hash::of(b"recording"),
            stored_at: 1_700_000_100_000,
        },
    );
    c.cbor(
        "response_error",
        "valid-frame-too-large",
        &ErrorReply::new(
            ErrorCode::FrameTooLarge,
            "frame of 2000000 bytes exceeds 1048576",
        ),
    );
    c.cbor(
        "response_error",
        "valid-unknown-code",
        &ErrorReply::new(ErrorCode::Unrecognized(999), "从更新的网关来的错误"),
    );
    c.put("response_error", "invalid-empty", []);
}

/// A CBOR map of text to text, for bodies of the wrong shape.
fn text_map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The committed CSR seed is only text that is not a CSR; the CSRs themselves are made
/// afresh by `fuzz::csr::generated_seeds` (key material is never committed).
fn csrs(c: &Corpus) {
    c.put(
        "enrollment_csr",
        "invalid-not-pem.txt",
        "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n",
    );
}

fn csv_files(c: &Corpus) {
    c.put(
        "roster_csv",
        "valid-roster.csv",
        "certificate_number,name,unit,post,category,certificate_status,auxiliary,agency,valid_until\n\
         ZF-001,张三,市场监管局,执法员,市场监管,valid,false,市场监管局,2027-12-31\n\
         ZF-002,李四,,,,withdrawn,否,,2027-06-30T16:00:00Z\n\
         FZ-003,王五,,,,withdrawn,是,,\n",
    );
    c.put(
        "roster_csv",
        "invalid-auxiliary-with-valid-certificate.csv",
        "certificate_number,name,certificate_status,auxiliary\nFZ-003,王五,valid,yes\n",
    );
    c.put(
        "roster_csv",
        "invalid-unknown-column.csv",
        "certificate_number,name,certificate_status,auxiliary,colour\nZF-001,张三,valid,no,red\n",
    );
    c.put(
        "roster_csv",
        "invalid-short-row.csv",
        "certificate_number,name,certificate_status,auxiliary\nZF-001,张三,valid\n",
    );
    let fingerprint = "ab".repeat(32);
    c.put(
        "device_csv",
        "valid-devices.csv",
        format!(
            "device_id,kind,serial,fingerprint,not_after,agency\n\
             dev-00001,recorder,SN-REC-00001,{fingerprint},2027-03-01T10:00:00Z,市场监管局\n\
             dev-00002,terminal,SN-TRM-00002,{},2027-03-01T10:00:00Z,\n",
            "CD".repeat(32)
        ),
    );
    c.put(
        "device_csv",
        "invalid-kind.csv",
        format!(
            "device_id,kind,serial,fingerprint,not_after\ndev-1,drone,S,{fingerprint},2027-03-01T10:00:00Z\n"
        ),
    );
    c.put(
        "device_csv",
        "invalid-missing-column.csv",
        "device_id,kind,serial,fingerprint\ndev-1,recorder,S,00\n",
    );
    let row = |i: u32, kind| EnrollmentRow {
        device_id: device(&format!("dev-{i:05}")),
        kind,
        serial: format!("SN-{i:05}"),
        fingerprint: format!("{i:064x}"),
        not_after: datetime!(2027-03-01 10:00:00 UTC),
    };
    let mut file = Vec::new();
    pki::write_enrollment(
        &mut file,
        &[row(1, DeviceKind::Recorder), row(2, DeviceKind::Terminal)],
    )
    .expect("written");
    c.put("enrollment_csv", "valid-two-devices.csv", &file);
    let mut twice = Vec::new();
    pki::write_enrollment(
        &mut twice,
        &[row(1, DeviceKind::Recorder), row(1, DeviceKind::Recorder)],
    )
    .expect("written");
    c.put("enrollment_csv", "invalid-same-device-twice.csv", twice);
    c.put(
        "enrollment_csv",
        "invalid-header.csv",
        "id,kind\ndev-1,recorder\n",
    );
}

fn configs(c: &Corpus) {
    let t = "gateway_config";
    c.put(t, "valid-empty.toml", "");
    let full = toml::to_string(&gateway::config::Config::default()).expect("defaults write");
    c.put(t, "valid-every-key.toml", full);
    c.put(
        t,
        "valid-file-and-environment.toml",
        "time_zone = \"Asia/Shanghai\"\n[limits]\nmax_frame_bytes = 65536\n\0\
         FIELDSYNC_DEVICE_IDLE_TIMEOUT_SECS=60\nFIELDSYNC_DATA_DIR=/var/lib/fieldsync\n",
    );
    c.put(
        t,
        "invalid-unknown-key.toml",
        "[device]\nidle_timeout = 30\n",
    );
    c.put(
        t,
        "invalid-keep-alive-not-below-idle.toml",
        "[device]\nidle_timeout_secs = 10\nkeep_alive_secs = 10\n",
    );
    c.put(t, "invalid-syntax.toml", "[limits\nmax_frame_bytes = 1\n");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--generated") {
        // What `fuzz/run` puts in its untracked work corpus before a run.
        let corpus = Corpus {
            root: PathBuf::from(args.next().expect("--generated DIR")),
        };
        for (name, bytes) in fuzz::csr::generated_seeds() {
            corpus.put("enrollment_csr", name, bytes);
        }
        println!("generated seeds written to {}", corpus.root.display());
        return;
    }
    let root = first
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let corpus = Corpus { root };
    frames(&corpus);
    requests(&corpus);
    responses(&corpus);
    csrs(&corpus);
    csv_files(&corpus);
    configs(&corpus);
    println!("seeds written to {}", corpus.root.display());
}
