-- fieldsync store, step 1: agencies, officers and the roster version, the device
-- registry, and the hash-chained audit log (PostgreSQL dialect).
-- Keep in step with ../sqlite/0001_registry.sql: the same tables, columns and rules.
-- Times are BIGINT milliseconds since the Unix epoch (UTC); enum words are the TEXT
-- spellings of the `protocol::domain` vocabulary. Objects are created unqualified, in
-- the first schema of the connection's search_path (the store's configured schema).

CREATE TABLE agencies (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT    NOT NULL,
    class          TEXT    NOT NULL CHECK (class IN ('a', 'b', 'c')),
    class_c_target BIGINT  CHECK (class_c_target IS NULL OR class_c_target >= 0),
    created_at     BIGINT  NOT NULL,
    CONSTRAINT agencies_name_key UNIQUE (name)
);

-- One row: the last roster version handed out. Every officer insert or change takes the
-- next one, so a terminal can ask for "everything after version N".
CREATE TABLE roster_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO roster_head (id, version) VALUES (1, 0);

CREATE TABLE officers (
    certificate_number TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    unit               TEXT    NOT NULL,
    post               TEXT    NOT NULL,
    category           TEXT    NOT NULL,
    certificate_status TEXT    NOT NULL CHECK (certificate_status IN ('valid', 'withdrawn', 'revoked')),
    auxiliary          BOOLEAN NOT NULL,
    agency_id          BIGINT  REFERENCES agencies (id),
    roster_version     BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    CONSTRAINT officers_roster_version_key UNIQUE (roster_version)
);
CREATE INDEX officers_agency ON officers (agency_id);

CREATE TABLE devices (
    id                      TEXT    PRIMARY KEY,
    kind                    TEXT    NOT NULL CHECK (kind IN ('recorder', 'terminal')),
    serial                  TEXT    NOT NULL,
    agency_id               BIGINT  REFERENCES agencies (id),
    assigned_officer        TEXT    REFERENCES officers (certificate_number),
    status                  TEXT    NOT NULL
        CHECK (status IN ('in_service', 'suspended', 'lost', 'revoked', 'retired')),
    certificate_fingerprint TEXT    NOT NULL,
    certificate_not_after   BIGINT  NOT NULL,
    enrolled_at             BIGINT  NOT NULL,
    last_seen               BIGINT,
    clock_skew_ms           BIGINT,
    status_changed_at       BIGINT  NOT NULL,
    -- A certificate is enrolled once, ever: a dead certificate never comes back.
    CONSTRAINT devices_fingerprint_key UNIQUE (certificate_fingerprint)
);
-- A serial (the physical device) has at most one live enrollment. A lost, revoked or
-- retired enrollment does not block enrolling the same hardware again with a new id and
-- a new certificate.
CREATE UNIQUE INDEX devices_live_serial ON devices (serial)
    WHERE status IN ('in_service', 'suspended');
CREATE INDEX devices_serial ON devices (serial);
CREATE INDEX devices_agency ON devices (agency_id);

-- The audit log: append-only, each entry hash-chained to the one before
-- (gateway/src/store/chain.rs documents the encoding). `seq` is assigned by the
-- appender from audit_head, never by the database.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

-- One row: the chain head (last seq and its hash). Every registry write transaction
-- locks it (SELECT ... FOR UPDATE) first, which serializes audit appends across all
-- gateways; the verifier compares it with the last entry, so a truncated tail is
-- reported unless the head was rewritten too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT  NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only in the database too: UPDATE, DELETE and TRUNCATE are refused. (Whoever
-- can drop triggers can still edit; the hash chain is what detects that.)
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
