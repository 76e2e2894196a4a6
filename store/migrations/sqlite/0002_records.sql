-- fieldsync store, step 2: field records (DOMAIN R3), tamper and two-officer flags,
-- identity checks, and the history of officers' certificate states (SQLite dialect).
-- Keep in step with ../postgres/0002_records.sql: the same tables, columns and rules.
-- Times are INTEGER milliseconds since the Unix epoch (UTC). Hashes are 64 lowercase
-- hex digits. Every table here is append-only (triggers at the end).

-- Every field record that joined its device's hash chain. The chain is
-- (device_id, sequence) with previous_hash/hash (protocol/src/chain.rs documents the
-- encoding); the content columns are exactly what the hash covers, so a reader can
-- recompute and verify it. `made_at` is the device's clock; `made_at_gateway` is that
-- time corrected by the clock skew the device's hello measured (gateway time), which is
-- what reports, deadlines and joins with recordings use.
CREATE TABLE field_records (
    device_id       TEXT    NOT NULL REFERENCES devices (id),
    sequence        INTEGER NOT NULL CHECK (sequence >= 1),
    previous_hash   TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    case_number     TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    stage           TEXT    NOT NULL
        CHECK (stage IN ('initiation', 'investigation', 'review_decision', 'service_execution', 'archive')),
    action_kind     TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    -- JSON array of certificate numbers, in the order the device listed them.
    officers        TEXT    NOT NULL,
    location        TEXT,
    lat_e6          INTEGER,
    lon_e6          INTEGER,
    made_at         INTEGER NOT NULL,
    made_at_gateway INTEGER NOT NULL,
    -- JSON array of recording ids (UUIDs); also one row each in field_record_recordings.
    recordings      TEXT    NOT NULL,
    corrects        INTEGER,
    clock_skew_ms   INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (device_id, sequence)
);
-- One view per case and per enforcement target (一户式集中储存), in time order.
CREATE INDEX field_records_case ON field_records (case_number, made_at_gateway);
CREATE INDEX field_records_target ON field_records (target, made_at_gateway);

-- The recordings a field record names, one row each, so recordings can be joined to
-- the records that cite them.
CREATE TABLE field_record_recordings (
    device_id    TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    recording_id TEXT    NOT NULL,
    PRIMARY KEY (device_id, sequence, recording_id),
    FOREIGN KEY (device_id, sequence) REFERENCES field_records (device_id, sequence)
);
CREATE INDEX field_record_recordings_recording ON field_record_recordings (recording_id);

-- A record refused as possible tampering, kept as evidence: the bytes the device sent
-- (the CBOR encoding of the protocol's FieldRecord) are stored as received. A record
-- sent again with the same content and the same reason is flagged once.
CREATE TABLE tamper_flags (
    id                INTEGER PRIMARY KEY,
    device_id         TEXT    NOT NULL REFERENCES devices (id),
    sequence          INTEGER NOT NULL,
    reason            TEXT    NOT NULL CHECK (reason IN ('fork', 'gap', 'altered', 'broken_link')),
    -- For a gap: the sequence number the chain expected.
    expected_sequence INTEGER,
    record_hash       TEXT    NOT NULL,
    evidence          BLOB    NOT NULL,
    flagged_at        INTEGER NOT NULL,
    CONSTRAINT tamper_flags_once UNIQUE (device_id, sequence, record_hash, reason)
);
CREATE INDEX tamper_flags_flagged_at ON tamper_flags (flagged_at);

-- A stored record of an action kind that needs two certified officers (DOMAIN R4)
-- whose officers did not satisfy the rule at the record's time. The record itself is
-- stored as evidence; this row says why it is unlawful.
CREATE TABLE two_officer_flags (
    device_id   TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    action_kind TEXT    NOT NULL,
    certified   INTEGER NOT NULL,
    required    INTEGER NOT NULL,
    -- JSON array of {"certificate_number", "reason"} for the listed numbers that did
    -- not count.
    not_counted TEXT    NOT NULL,
    flagged_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, sequence),
    FOREIGN KEY (device_id, sequence) REFERENCES field_records (device_id, sequence)
);
CREATE INDEX two_officer_flags_flagged_at ON two_officer_flags (flagged_at);

-- Every identity check of an officer's certificate (DOMAIN R4), online or uploaded
-- after an offline check. `check_id` is made on the device, so an upload is
-- idempotent. `verdict` is the answer the officer was given (the gateway's online, the
-- device's roster offline); `registry_verdict` is what the registry said at the
-- check's time, so a stale offline roster is visible.
CREATE TABLE identity_checks (
    device_id          TEXT    NOT NULL REFERENCES devices (id),
    check_id           TEXT    NOT NULL,
    certificate_number TEXT    NOT NULL,
    mode               TEXT    NOT NULL CHECK (mode IN ('online', 'offline')),
    verdict            TEXT    NOT NULL CHECK (verdict IN ('valid', 'withdrawn', 'revoked', 'unknown')),
    registry_verdict   TEXT    NOT NULL CHECK (registry_verdict IN ('valid', 'withdrawn', 'revoked', 'unknown')),
    roster_version     INTEGER NOT NULL,
    location           TEXT,
    case_number        TEXT,
    checked_at         INTEGER NOT NULL,
    checked_at_gateway INTEGER NOT NULL,
    received_at        INTEGER NOT NULL,
    PRIMARY KEY (device_id, check_id)
);
CREATE INDEX identity_checks_certificate ON identity_checks (certificate_number, checked_at_gateway);

-- Each state an officer's certificate has had, from when (gateway time), so the
-- two-officer rule judges a record by the certificates as they were at its time.
-- Written by every officer insert and change; existing officers start with their
-- current state.
CREATE TABLE certificate_history (
    certificate_number TEXT    NOT NULL REFERENCES officers (certificate_number),
    roster_version     INTEGER NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('valid', 'withdrawn', 'revoked')),
    auxiliary          INTEGER NOT NULL CHECK (auxiliary IN (0, 1)),
    since              INTEGER NOT NULL,
    PRIMARY KEY (certificate_number, roster_version)
);
CREATE INDEX certificate_history_since ON certificate_history (certificate_number, since);
INSERT INTO certificate_history (certificate_number, roster_version, status, auxiliary, since)
    SELECT certificate_number, roster_version, certificate_status, auxiliary, updated_at
    FROM officers;

-- Append-only in the database too (as the audit log): records are evidence, and
-- corrections are new records (防删改).
CREATE TRIGGER field_records_no_update BEFORE UPDATE ON field_records
BEGIN SELECT RAISE(ABORT, 'field_records is append-only'); END;
CREATE TRIGGER field_records_no_delete BEFORE DELETE ON field_records
BEGIN SELECT RAISE(ABORT, 'field_records is append-only'); END;
CREATE TRIGGER field_record_recordings_no_update BEFORE UPDATE ON field_record_recordings
BEGIN SELECT RAISE(ABORT, 'field_record_recordings is append-only'); END;
CREATE TRIGGER field_record_recordings_no_delete BEFORE DELETE ON field_record_recordings
BEGIN SELECT RAISE(ABORT, 'field_record_recordings is append-only'); END;
CREATE TRIGGER tamper_flags_no_update BEFORE UPDATE ON tamper_flags
BEGIN SELECT RAISE(ABORT, 'tamper_flags is append-only'); END;
CREATE TRIGGER tamper_flags_no_delete BEFORE DELETE ON tamper_flags
BEGIN SELECT RAISE(ABORT, 'tamper_flags is append-only'); END;
CREATE TRIGGER two_officer_flags_no_update BEFORE UPDATE ON two_officer_flags
BEGIN SELECT RAISE(ABORT, 'two_officer_flags is append-only'); END;
CREATE TRIGGER two_officer_flags_no_delete BEFORE DELETE ON two_officer_flags
BEGIN SELECT RAISE(ABORT, 'two_officer_flags is append-only'); END;
CREATE TRIGGER identity_checks_no_update BEFORE UPDATE ON identity_checks
BEGIN SELECT RAISE(ABORT, 'identity_checks is append-only'); END;
CREATE TRIGGER identity_checks_no_delete BEFORE DELETE ON identity_checks
BEGIN SELECT RAISE(ABORT, 'identity_checks is append-only'); END;
CREATE TRIGGER certificate_history_no_update BEFORE UPDATE ON certificate_history
BEGIN SELECT RAISE(ABORT, 'certificate_history is append-only'); END;
CREATE TRIGGER certificate_history_no_delete BEFORE DELETE ON certificate_history
BEGIN SELECT RAISE(ABORT, 'certificate_history is append-only'); END;
