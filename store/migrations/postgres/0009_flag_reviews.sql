-- Two-officer flags are re-evaluated (issue 21, point 4): when the registry changes
-- (an officer added, a certificate's status, expiry or effective time changed) and
-- when a correction arrives. A flag is raised and cleared over time, so the flags
-- become an append-only log of changes; a record's flag is its latest change.

-- Every raise and clear of a record's two-officer flag. `id` orders a device's changes
-- in commit order (writers of one device's changes hold its advisory lock), so a
-- terminal asks for the changes after the last one it saw. `cause` says what
-- re-evaluated it: `ingest` (the record arrived), `registry` (`cause_ref` = the
-- certificate number), `correction` (`cause_ref` = `<device>/<sequence>` of the
-- correction) or `upgrade` (this migration's review of the flags raised before it).
CREATE TABLE two_officer_flag_changes (
    id          BIGSERIAL PRIMARY KEY,
    device_id   TEXT    NOT NULL,
    sequence    BIGINT  NOT NULL,
    action_kind TEXT    NOT NULL,
    raised      BOOLEAN NOT NULL,
    certified   BIGINT  NOT NULL,
    required    BIGINT  NOT NULL,
    -- JSON array of {"certificate_number", "reason"}: the listed numbers that did not
    -- count at this change.
    not_counted TEXT    NOT NULL,
    cause       TEXT    NOT NULL CHECK (cause IN ('ingest', 'registry', 'correction', 'upgrade')),
    cause_ref   TEXT,
    at          BIGINT  NOT NULL,
    FOREIGN KEY (device_id, sequence) REFERENCES field_records (device_id, sequence)
);
CREATE INDEX two_officer_flag_changes_record ON two_officer_flag_changes (device_id, sequence, id);
CREATE INDEX two_officer_flag_changes_device ON two_officer_flag_changes (device_id, id);
INSERT INTO two_officer_flag_changes (device_id, sequence, action_kind, raised, certified,
    required, not_counted, cause, cause_ref, at)
    SELECT device_id, sequence, action_kind, TRUE, certified, required, not_counted, 'ingest',
        NULL, flagged_at
    FROM two_officer_flags ORDER BY flagged_at, device_id, sequence;
DROP TABLE two_officer_flags;
CREATE TRIGGER two_officer_flag_changes_no_change BEFORE UPDATE OR DELETE ON two_officer_flag_changes
    FOR EACH ROW EXECUTE FUNCTION fieldsync_append_only();
CREATE TRIGGER two_officer_flag_changes_no_truncate BEFORE TRUNCATE ON two_officer_flag_changes
    FOR EACH STATEMENT EXECUTE FUNCTION fieldsync_append_only();

-- The certificate numbers (trimmed) listed on records the rule may judge again: every
-- record of a two-officer kind and every correction (all records stored before this
-- migration). A registry change re-evaluates only the records listing the changed
-- number at or after the change's effective time.
CREATE TABLE field_record_officers (
    certificate_number TEXT    NOT NULL,
    made_at_gateway    BIGINT  NOT NULL,
    device_id          TEXT    NOT NULL,
    sequence           BIGINT  NOT NULL,
    PRIMARY KEY (certificate_number, made_at_gateway, device_id, sequence),
    FOREIGN KEY (device_id, sequence) REFERENCES field_records (device_id, sequence)
);
INSERT INTO field_record_officers (certificate_number, made_at_gateway, device_id, sequence)
    SELECT DISTINCT btrim(o.value), r.made_at_gateway, r.device_id, r.sequence
    FROM field_records r, json_array_elements_text(r.officers::json) AS o(value);

-- A correction names the record it corrects by sequence number in its device's chain.
CREATE INDEX field_records_corrects ON field_records (device_id, corrects)
    WHERE corrects IS NOT NULL;

-- Records whose flag a correction (or this upgrade) asks to re-evaluate: written in the
-- ingest transaction that stores the correction, worked off by the gateway's review
-- job in a registry transaction (which writes the audit entries), and deleted there.
-- A queue, not evidence: the changes and the audit log are.
CREATE TABLE two_officer_reviews_due (
    device_id TEXT    NOT NULL,
    sequence  BIGINT  NOT NULL,
    cause     TEXT    NOT NULL CHECK (cause IN ('correction', 'upgrade')),
    cause_ref TEXT    NOT NULL,
    PRIMARY KEY (device_id, sequence, cause_ref),
    FOREIGN KEY (device_id, sequence) REFERENCES field_records (device_id, sequence)
);
INSERT INTO two_officer_reviews_due (device_id, sequence, cause, cause_ref)
    SELECT c.device_id, c.corrects, 'correction', c.device_id || '/' || c.sequence
    FROM field_records c JOIN field_records r
        ON r.device_id = c.device_id AND r.sequence = c.corrects
    WHERE c.corrects IS NOT NULL;
INSERT INTO two_officer_reviews_due (device_id, sequence, cause, cause_ref)
    SELECT DISTINCT device_id, sequence, 'upgrade', 'upgrade' FROM two_officer_flag_changes
    ON CONFLICT DO NOTHING;
