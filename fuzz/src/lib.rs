//! The body of every fuzz target, one public function per decoder, and the table that
//! names them.
//!
//! The cargo-fuzz binaries in `targets/` are one line each: they call the function of
//! the same name here. The test suite (`tests/corpus.rs`) replays every file of
//! `corpus/<target>/` through the same function, so the seeds and every crash input
//! once found stay exercised by `cargo nextest run` and cannot rot. `run` (beside this
//! crate) fuzzes each target for a given time; that is never part of CI.
//!
//! Each body drives the decoder that runs in production (the device protocol's frame
//! decoder and message decoding, the CA's CSR check, the CSV readers on both sides of
//! an import, the gateway's configuration loading) and then checks what a decoder must
//! never break: a value it accepts encodes and decodes back to itself, and a value
//! it refuses is refused with a typed error. A panic anywhere is a finding.

#[cfg(feature = "gateway")]
pub mod config;
pub mod csr;
#[cfg(feature = "gateway")]
pub mod csv_rows;
pub mod frame;
pub mod message;

/// What a decoder made of one input: the corpus names its seeds `valid-*` or
/// `invalid-*` after it, so a seed that stops meaning what it was written for fails
/// the replay test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Decoded, and every check after decoding passed.
    Accepted,
    /// Refused with a typed error.
    Refused,
}

impl Outcome {
    /// `Accepted` if `result` is `Ok`.
    pub fn of<T, E>(result: &Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Accepted
        } else {
            Outcome::Refused
        }
    }
}

/// One fuzz target.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Its name: the cargo-fuzz binary, and the corpus folder `corpus/<name>/`.
    pub name: &'static str,
    /// The path of its body in this crate, which the binary calls.
    pub body_path: &'static str,
    /// Its body.
    pub body: fn(&[u8]) -> Outcome,
}

macro_rules! targets {
    ($($(#[$cfg:meta])* $module:ident :: $name:ident),+ $(,)?) => {
        /// Every fuzz target (of the features built), in the order `run` fuzzes them.
        pub const TARGETS: &[Target] = &[
            $($(#[$cfg])* Target {
                name: stringify!($name),
                body_path: concat!(stringify!($module), "::", stringify!($name)),
                body: $module::$name,
            }),+
        ];
    };
}

targets![
    frame::frame_decoder,
    message::request_hello,
    message::request_push_records,
    message::request_check_identity,
    message::request_push_identity_checks,
    message::request_roster_since,
    message::request_announce_recording,
    message::request_upload_offset,
    message::request_upload_chunk,
    message::request_flags_since,
    message::response_welcome,
    message::response_record_acks,
    message::response_identity_result,
    message::response_identity_check_acks,
    message::response_roster_delta,
    message::response_recording_tracked,
    message::response_upload_offset,
    message::response_recording_stored,
    message::response_flag_changes,
    message::response_error,
    csr::enrollment_csr,
    #[cfg(feature = "gateway")]
    csv_rows::roster_csv,
    #[cfg(feature = "gateway")]
    csv_rows::device_csv,
    #[cfg(feature = "gateway")]
    csv_rows::enrollment_csv,
    #[cfg(feature = "gateway")]
    config::gateway_config,
];
