-- fieldsync store, step 4: recordings (audio/video) and the 24-hour rule (DOMAIN R2),
-- their state history, devices flagged as possibly holding recordings, and the
-- full-process flags of cases (DOMAIN R3) (SQLite dialect).
-- Keep in step with ../postgres/0004_recordings.sql: the same tables, columns and rules.
-- Times are INTEGER milliseconds since the Unix epoch (UTC). `*_device` columns are as
-- the device's clock said; the others are gateway time, corrected by `clock_skew_ms`
-- (gateway − device) measured at the device's hello before the announcement.

CREATE TABLE recordings (
    id                TEXT    PRIMARY KEY,
    device_id         TEXT    NOT NULL REFERENCES devices (id),
    officer           TEXT,
    case_number       TEXT,
    media             TEXT    NOT NULL CHECK (media IN ('audio', 'video')),
    size              INTEGER NOT NULL CHECK (size >= 0),
    sha256            TEXT    NOT NULL,
    started_at_device INTEGER NOT NULL,
    ended_at_device   INTEGER NOT NULL,
    clock_skew_ms     INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER NOT NULL,
    deadline          INTEGER NOT NULL,
    announced_at      INTEGER NOT NULL,
    bytes_received    INTEGER NOT NULL CHECK (bytes_received >= 0 AND bytes_received <= size),
    state             TEXT    NOT NULL
        CHECK (state IN ('pending', 'due_soon', 'overdue', 'uploaded_on_time', 'uploaded_late')),
    state_changed_at  INTEGER NOT NULL,
    stored_at         INTEGER,
    storage_key       TEXT,
    -- Stored means durable in the media store: both facts or neither.
    CHECK ((stored_at IS NULL) = (storage_key IS NULL))
);
CREATE INDEX recordings_device ON recordings (device_id);
CREATE INDEX recordings_case ON recordings (case_number);
CREATE INDEX recordings_sha256 ON recordings (sha256);
-- The deadline watcher reads only recordings not stored yet.
CREATE INDEX recordings_unstored ON recordings (deadline) WHERE stored_at IS NULL;

-- Every state a recording was ever in, appended when it changes (and once when it is
-- announced): when it became due soon, overdue, stored on time or late.
CREATE TABLE recording_state_changes (
    seq          INTEGER PRIMARY KEY,
    recording_id TEXT    NOT NULL REFERENCES recordings (id),
    from_state   TEXT,
    to_state     TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    reason       TEXT    NOT NULL
);
CREATE INDEX recording_state_changes_recording ON recording_state_changes (recording_id, seq);
CREATE TRIGGER recording_state_changes_no_update BEFORE UPDATE ON recording_state_changes
BEGIN
    SELECT RAISE(ABORT, 'recording_state_changes is append-only');
END;
CREATE TRIGGER recording_state_changes_no_delete BEFORE DELETE ON recording_state_changes
BEGIN
    SELECT RAISE(ABORT, 'recording_state_changes is append-only');
END;

-- Devices flagged by a rule: `silent` = not synced for `silent_device_hours`, so it may
-- hold recordings. A flag is raised once and cleared (never deleted) when the rule no
-- longer holds; at most one open flag per device and rule.
CREATE TABLE device_flags (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT    NOT NULL REFERENCES devices (id),
    flag       TEXT    NOT NULL CHECK (flag IN ('silent')),
    since      INTEGER NOT NULL,
    raised_at  INTEGER NOT NULL,
    cleared_at INTEGER
);
CREATE UNIQUE INDEX device_flags_open ON device_flags (device_id, flag) WHERE cleared_at IS NULL;

-- Cases flagged by the full-process rules (DOMAIN R3): `missing_audio_video` (a field
-- record of a full-process action kind with no linked recording covering its time, once
-- its upload deadline passed; `subject` = "<device>/<sequence>") and `archive_overdue`
-- (execution ended more than `archive_days` ago without an archive-stage record;
-- `subject` = the case number). Raised once, cleared (never deleted) when resolved.
CREATE TABLE case_flags (
    id          INTEGER PRIMARY KEY,
    case_number TEXT    NOT NULL,
    flag        TEXT    NOT NULL CHECK (flag IN ('missing_audio_video', 'archive_overdue')),
    subject     TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    raised_at   INTEGER NOT NULL,
    cleared_at  INTEGER,
    detail      TEXT    NOT NULL
);
CREATE INDEX case_flags_case ON case_flags (case_number);
CREATE UNIQUE INDEX case_flags_open ON case_flags (flag, subject) WHERE cleared_at IS NULL;
