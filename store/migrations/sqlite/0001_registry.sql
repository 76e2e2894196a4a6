-- fieldsync store, step 1: agencies, officers and the roster version, the device
-- registry, and the hash-chained audit log (SQLite dialect).
-- Keep in step with ../postgres/0001_registry.sql: the same tables, columns and rules.
-- Times are INTEGER milliseconds since the Unix epoch (UTC); enum words are the TEXT
-- spellings of the `protocol::domain` vocabulary.

CREATE TABLE agencies (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL,
    class          TEXT    NOT NULL CHECK (class IN ('a', 'b', 'c')),
    class_c_target INTEGER CHECK (class_c_target IS NULL OR class_c_target >= 0),
    created_at     INTEGER NOT NULL,
    CONSTRAINT agencies_name_key UNIQUE (name)
);

-- One row: the last roster version handed out. Every officer insert or change takes the
-- next one, so a terminal can ask for "everything after version N".
CREATE TABLE roster_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO roster_head (id, version) VALUES (1, 0);

CREATE TABLE officers (
    certificate_number TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    unit               TEXT    NOT NULL,
    post               TEXT    NOT NULL,
    category           TEXT    NOT NULL,
    certificate_status TEXT    NOT NULL CHECK (certificate_status IN ('valid', 'withdrawn', 'revoked')),
    auxiliary          INTEGER NOT NULL CHECK (auxiliary IN (0, 1)),
    agency_id          INTEGER REFERENCES agencies (id),
    roster_version     INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    CONSTRAINT officers_roster_version_key UNIQUE (roster_version)
);
CREATE INDEX officers_agency ON officers (agency_id);

CREATE TABLE devices (
    id                      TEXT    PRIMARY KEY,
    kind                    TEXT    NOT NULL CHECK (kind IN ('recorder', 'terminal')),
    serial                  TEXT    NOT NULL,
    agency_id               INTEGER REFERENCES agencies (id),
    assigned_officer        TEXT    REFERENCES officers (certificate_number),
    status                  TEXT    NOT NULL
        CHECK (status IN ('in_service', 'suspended', 'lost', 'revoked', 'retired')),
    certificate_fingerprint TEXT    NOT NULL,
    certificate_not_after   INTEGER NOT NULL,
    enrolled_at             INTEGER NOT NULL,
    last_seen               INTEGER,
    clock_skew_ms           INTEGER,
    status_changed_at       INTEGER NOT NULL
);
-- A certificate is enrolled once, ever: a dead certificate never comes back. This is
-- also the index of the handshake lookup (named like PostgreSQL's constraint index).
CREATE UNIQUE INDEX devices_fingerprint_key ON devices (certificate_fingerprint);
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
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);

-- One row: the chain head (last seq and its hash). Appenders read and move it inside
-- their write transaction; the verifier compares it with the last entry, so a
-- truncated tail is reported unless the head was rewritten too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only in the database too: an UPDATE or DELETE through the store's own
-- connection is refused. (Whoever can drop triggers can still edit; the hash chain is
-- what detects that.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
