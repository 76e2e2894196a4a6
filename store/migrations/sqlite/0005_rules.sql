-- fieldsync store, step 5: the rules hold whatever a device clock, an officer or an
-- operator types (issue 21) (SQLite dialect).
-- Keep in step with ../postgres/0005_rules.sql: the same tables, columns and rules.

-- Action kinds are compared in one normalised form (trimmed, ASCII lower case): the
-- code is kept beside the kind as sealed (the hash covers the sealed spelling). Records
-- stored before this step get their code here; the append-only trigger is lifted for
-- this one statement.
ALTER TABLE field_records ADD COLUMN action_code TEXT;
-- 1 when the device's clock could not be trusted for the record's time: its
-- made_at_gateway is then when the gateway received it.
ALTER TABLE field_records ADD COLUMN clock_implausible INTEGER NOT NULL DEFAULT 0
    CHECK (clock_implausible IN (0, 1));
DROP TRIGGER field_records_no_update;
UPDATE field_records SET action_code = lower(trim(action_kind));
CREATE TRIGGER field_records_no_update BEFORE UPDATE ON field_records
BEGIN SELECT RAISE(ABORT, 'field_records is append-only'); END;
CREATE INDEX field_records_action_code ON field_records (action_code, made_at_gateway);

-- 1 when the recording's times could not be trusted: its end (and deadline) then
-- count from its announcement.
ALTER TABLE recordings ADD COLUMN clock_implausible INTEGER NOT NULL DEFAULT 0
    CHECK (clock_implausible IN (0, 1));

-- Device flags gain `clock_implausible` (a skew beyond the bound, or a time in the
-- future). SQLite cannot change a CHECK in place: the table is rebuilt.
CREATE TABLE device_flags_new (
    id         INTEGER PRIMARY KEY,
    device_id  TEXT    NOT NULL REFERENCES devices (id),
    flag       TEXT    NOT NULL CHECK (flag IN ('silent', 'clock_implausible')),
    since      INTEGER NOT NULL,
    raised_at  INTEGER NOT NULL,
    cleared_at INTEGER
);
INSERT INTO device_flags_new (id, device_id, flag, since, raised_at, cleared_at)
    SELECT id, device_id, flag, since, raised_at, cleared_at FROM device_flags;
DROP TABLE device_flags;
ALTER TABLE device_flags_new RENAME TO device_flags;
CREATE UNIQUE INDEX device_flags_open ON device_flags (device_id, flag) WHERE cleared_at IS NULL;

-- Certificates have an expiry date; a change has an effective time (`since`, which
-- may be before it was entered) and the time it was entered.
ALTER TABLE officers ADD COLUMN valid_until INTEGER;
ALTER TABLE certificate_history ADD COLUMN valid_until INTEGER;
ALTER TABLE certificate_history ADD COLUMN entered_at INTEGER;

-- Identity checks can answer `expired` and `auxiliary` (rebuilt for the CHECK).
CREATE TABLE identity_checks_new (
    device_id          TEXT    NOT NULL REFERENCES devices (id),
    check_id           TEXT    NOT NULL,
    certificate_number TEXT    NOT NULL,
    mode               TEXT    NOT NULL CHECK (mode IN ('online', 'offline')),
    verdict            TEXT    NOT NULL
        CHECK (verdict IN ('valid', 'withdrawn', 'revoked', 'unknown', 'expired', 'auxiliary')),
    registry_verdict   TEXT    NOT NULL
        CHECK (registry_verdict IN ('valid', 'withdrawn', 'revoked', 'unknown', 'expired', 'auxiliary')),
    roster_version     INTEGER NOT NULL,
    location           TEXT,
    case_number        TEXT,
    checked_at         INTEGER NOT NULL,
    checked_at_gateway INTEGER NOT NULL,
    received_at        INTEGER NOT NULL,
    PRIMARY KEY (device_id, check_id)
);
INSERT INTO identity_checks_new SELECT device_id, check_id, certificate_number, mode, verdict,
    registry_verdict, roster_version, location, case_number, checked_at, checked_at_gateway,
    received_at FROM identity_checks;
DROP TABLE identity_checks;
ALTER TABLE identity_checks_new RENAME TO identity_checks;
CREATE INDEX identity_checks_certificate ON identity_checks (certificate_number, checked_at_gateway);
CREATE TRIGGER identity_checks_no_update BEFORE UPDATE ON identity_checks
BEGIN SELECT RAISE(ABORT, 'identity_checks is append-only'); END;
CREATE TRIGGER identity_checks_no_delete BEFORE DELETE ON identity_checks
BEGIN SELECT RAISE(ABORT, 'identity_checks is append-only'); END;
