//! Every message of the device protocol, one target per request and reply body.
//!
//! Each target's input is the CBOR of one body (a `Hello`, a `PushRecords`, ...). The
//! target puts it in the envelope both ends put it in (`{"version": 1, "body":
//! {"<kind>": <input>}}`, byte for byte what `ciborium` writes for a
//! [`Request`]/[`Response`]) and decodes the whole with [`decode_body`], the function
//! both ends decode every frame body with. So the fuzzer spends its time inside one
//! body type instead of first finding the envelope, and still reaches the code that
//! runs, including the version probe and the trailing-bytes check.
//!
//! What it checks after decoding: the body is of the kind the envelope named; the
//! message encodes and decodes back to itself; and the checks a receiver runs next
//! (field limits, the record hash chain, the rules digest) refuse or accept without
//! panicking.

use protocol::chain::{ChainHead, check_record};
use protocol::message::{Versioned, decode_body, encode_body};
use protocol::{DeviceId, Limits, PROTOCOL_VERSION, Request, RequestBody, Response, ResponseBody};

use crate::Outcome;

/// The device whose chain pushed records are checked against.
pub const CHAIN_DEVICE: &str = "dev-00001";

/// CBOR major types used by the envelope.
const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_TEXT: u8 = 3;
const MAJOR_MAP: u8 = 5;

/// Appends a CBOR head (major type and argument) in its shortest form, as ciborium
/// writes it.
fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// `body` (the CBOR of one body of kind `kind`) in a message envelope of this
/// protocol version.
pub fn envelope(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 32);
    head(&mut out, MAJOR_MAP, 2);
    text(&mut out, "version");
    head(&mut out, MAJOR_UNSIGNED, u64::from(PROTOCOL_VERSION));
    text(&mut out, "body");
    head(&mut out, MAJOR_MAP, 1);
    text(&mut out, kind);
    out.extend_from_slice(body);
    out
}

/// Decodes a message; a decoded one must survive a round trip, a refused one must say
/// why with a wire code.
fn decode<T: Versioned + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<T> {
    match decode_body::<T>(bytes) {
        Ok(message) => {
            let again: T = decode_body(&encode_body(&message))
                .expect("a decoded message encodes to bytes that decode");
            assert_eq!(again, message, "a decoded message survives a round trip");
            Some(message)
        }
        Err(e) => {
            let _ = e.code();
            assert!(!e.to_string().is_empty(), "a refusal says why");
            None
        }
    }
}

/// Decodes a request body of `kind`, then runs the checks the gateway runs on it.
fn request(kind: &'static str, data: &[u8]) -> Outcome {
    let Some(request) = decode::<Request>(&envelope(kind, data)) else {
        return Outcome::Refused;
    };
    assert_eq!(
        request.body.kind(),
        kind,
        "the envelope names the body's kind"
    );
    let limits = Limits::default();
    let checked = match &request.body {
        RequestBody::Hello(hello) => hello.validate(&limits).is_ok(),
        RequestBody::PushRecords(push) => push_records_hold(push, &limits),
        RequestBody::CheckIdentity(check) => check.validate(&limits).is_ok(),
        RequestBody::PushIdentityChecks(push) => {
            Limits::check_count(
                "checks",
                push.checks.len(),
                limits.max_identity_checks_per_push,
            )
            .is_ok()
                && push.checks.iter().all(|c| c.validate(&limits).is_ok())
        }
        RequestBody::AnnounceRecording(announcement) => announcement.validate(&limits).is_ok(),
        RequestBody::RosterSince(_)
        | RequestBody::UploadOffset(_)
        | RequestBody::UploadChunk(_)
        | RequestBody::FlagsSince(_) => true,
    };
    if checked {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// The gateway's checks on a push: the count, every record's fields, and the hash
/// chain from its start on [`CHAIN_DEVICE`].
fn push_records_hold(push: &protocol::message::PushRecords, limits: &Limits) -> bool {
    let device = DeviceId::new(CHAIN_DEVICE).expect("a valid device id");
    if Limits::check_count("records", push.records.len(), limits.max_records_per_push).is_err() {
        return false;
    }
    let mut head = ChainHead::default();
    let mut whole = true;
    for record in &push.records {
        whole &= record.content.validate(limits).is_ok();
        match check_record(&device, &head, record, None) {
            Ok(_) => head = head.advance(record),
            Err(broken) => {
                let _ = protocol::message::RejectReason::from(&broken);
                whole = false;
            }
        }
    }
    whole
}

/// Decodes a reply body of `kind`, then runs the checks the agent runs on it.
fn response(kind: &'static str, data: &[u8]) -> Outcome {
    let Some(response) = decode::<Response>(&envelope(kind, data)) else {
        return Outcome::Refused;
    };
    if let ResponseBody::Welcome(welcome) = &response.body
        && let Some(rules) = &welcome.rules
    {
        let _ = rules.digest();
    }
    Outcome::Accepted
}

macro_rules! bodies {
    ($direction:ident: $($name:ident => $kind:literal),+ $(,)?) => {
        $(
            #[doc = concat!("The `", $kind, "` body, in a `", stringify!($direction), "` envelope.")]
            pub fn $name(data: &[u8]) -> Outcome {
                $direction($kind, data)
            }
        )+
    };
}

bodies![request:
    request_hello => "hello",
    request_push_records => "push_records",
    request_check_identity => "check_identity",
    request_push_identity_checks => "push_identity_checks",
    request_roster_since => "roster_since",
    request_announce_recording => "announce_recording",
    request_upload_offset => "upload_offset",
    request_upload_chunk => "upload_chunk",
    request_flags_since => "flags_since",
];

bodies![response:
    response_welcome => "welcome",
    response_record_acks => "record_acks",
    response_identity_result => "identity_result",
    response_identity_check_acks => "identity_check_acks",
    response_roster_delta => "roster_delta",
    response_recording_tracked => "recording_tracked",
    response_upload_offset => "upload_offset",
    response_recording_stored => "recording_stored",
    response_flag_changes => "flag_changes",
    response_error => "error",
];

#[cfg(test)]
mod tests {
    use protocol::message::{Hello, RosterSince};

    use super::*;

    #[test]
    fn the_envelope_is_what_ciborium_writes() {
        let hello = Hello {
            device_time: 1_700_000_000_000,
            agent_version: "0.1.0".into(),
            rules_digest: None,
        };
        let whole = encode_body(&Request::new(RequestBody::Hello(hello.clone())));
        assert_eq!(envelope("hello", &encode_body(&hello)), whole);
        let since = RosterSince { version: 70_000 };
        let whole = encode_body(&Request::new(RequestBody::RosterSince(since)));
        assert_eq!(envelope("roster_since", &encode_body(&since)), whole);
    }

    #[test]
    fn a_body_of_another_kind_is_refused() {
        let since = encode_body(&RosterSince { version: 1 });
        assert_eq!(request_hello(&since), Outcome::Refused);
        assert_eq!(request_roster_since(&since), Outcome::Accepted);
    }
}
