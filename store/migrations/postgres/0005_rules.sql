-- fieldsync store, step 5: the rules hold whatever a device clock, an officer or an
-- operator types (issue 21) (PostgreSQL dialect).
-- Keep in step with ../sqlite/0005_rules.sql: the same tables, columns and rules.

-- Action kinds are compared in one normalised form (trimmed, ASCII lower case): the
-- code is kept beside the kind as sealed (the hash covers the sealed spelling). Records
-- stored before this step get their code here; the append-only trigger is lifted for
-- this one statement.
ALTER TABLE field_records ADD COLUMN action_code TEXT;
-- TRUE when the device's clock could not be trusted for the record's time: its
-- made_at_gateway is then when the gateway received it.
ALTER TABLE field_records ADD COLUMN clock_implausible BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE field_records DISABLE TRIGGER field_records_no_change;
UPDATE field_records SET action_code = lower(btrim(action_kind));
ALTER TABLE field_records ENABLE TRIGGER field_records_no_change;
CREATE INDEX field_records_action_code ON field_records (action_code, made_at_gateway);

-- TRUE when the recording's times could not be trusted: its end (and deadline) then
-- count from its announcement.
ALTER TABLE recordings ADD COLUMN clock_implausible BOOLEAN NOT NULL DEFAULT FALSE;

-- Device flags gain `clock_implausible` (a skew beyond the bound, or a time in the
-- future).
ALTER TABLE device_flags DROP CONSTRAINT device_flags_flag_check;
ALTER TABLE device_flags ADD CONSTRAINT device_flags_flag_check
    CHECK (flag IN ('silent', 'clock_implausible'));

-- Certificates have an expiry date; a change has an effective time (`since`, which
-- may be before it was entered) and the time it was entered.
ALTER TABLE officers ADD COLUMN valid_until BIGINT;
ALTER TABLE certificate_history ADD COLUMN valid_until BIGINT;
ALTER TABLE certificate_history ADD COLUMN entered_at BIGINT;

-- Identity checks can answer `expired` and `auxiliary`.
ALTER TABLE identity_checks DROP CONSTRAINT identity_checks_verdict_check;
ALTER TABLE identity_checks ADD CONSTRAINT identity_checks_verdict_check
    CHECK (verdict IN ('valid', 'withdrawn', 'revoked', 'unknown', 'expired', 'auxiliary'));
ALTER TABLE identity_checks DROP CONSTRAINT identity_checks_registry_verdict_check;
ALTER TABLE identity_checks ADD CONSTRAINT identity_checks_registry_verdict_check
    CHECK (registry_verdict IN ('valid', 'withdrawn', 'revoked', 'unknown', 'expired', 'auxiliary'));
