-- The agent's local store: the outbox of field records and identity checks, the
-- device's own chain head, the roster cache and the sync state. One SQLite file in
-- the agent's data folder (WAL, synchronous=FULL).

-- Where the device's record chain ends: the next sequence number and the hash of the
-- last record made. One row, advanced in the same transaction that adds a record.
CREATE TABLE chain_head (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    next_sequence INTEGER NOT NULL CHECK (next_sequence >= 1),
    last_hash     BLOB    NOT NULL CHECK (length(last_hash) = 32)
);
INSERT INTO chain_head (id, next_sequence, last_hash) VALUES (1, 1, zeroblob(32));

-- Sealed field records not yet acknowledged as stored (state 'queued'), and records
-- the gateway refused ('rejected', kept with the reason) or that were sealed again
-- onto the gateway's chain after a refusal ('superseded', pointing at the copy).
-- A record leaves this table only when the gateway's ack says stored or duplicate.
-- resealed_from is the entry a copy was made from; resealed_as the sequence number
-- the copy got (kept after the copy itself left the table).
CREATE TABLE outbox_records (
    entry         INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence      INTEGER NOT NULL CHECK (sequence >= 1),
    previous_hash BLOB    NOT NULL CHECK (length(previous_hash) = 32),
    hash          BLOB    NOT NULL CHECK (length(hash) = 32),
    content       TEXT    NOT NULL,
    made_at       INTEGER NOT NULL,
    queued_at     INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'rejected', 'superseded')),
    reason        TEXT,
    rejected_at   INTEGER,
    resealed_from INTEGER,
    resealed_as   INTEGER
);
CREATE UNIQUE INDEX outbox_records_queued_sequence
    ON outbox_records (sequence) WHERE state = 'queued';

-- Identity checks made offline (answered from the roster cache), queued for upload;
-- 'rejected' ones are kept with the gateway's reason.
CREATE TABLE outbox_checks (
    check_id           TEXT    PRIMARY KEY,
    certificate_number TEXT    NOT NULL,
    checked_at         INTEGER NOT NULL,
    location           TEXT,
    case_number        TEXT,
    verdict            TEXT    NOT NULL,
    roster_version     INTEGER NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('queued', 'rejected')),
    reason             TEXT
);

-- The synced roster: certificate number -> status, name, unit, category.
CREATE TABLE roster (
    certificate_number TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    unit               TEXT    NOT NULL,
    post               TEXT    NOT NULL,
    category           TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    version            INTEGER NOT NULL
);

-- Small facts about syncing (roster version, last sync, clock skew, ...), by key.
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
