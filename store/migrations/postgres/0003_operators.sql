-- fieldsync store, step 3: operator bearer tokens (one role each, stored as SHA-256
-- hashes) and the daily allocation snapshots finance reads as a trend (PostgreSQL
-- dialect). Keep in step with ../sqlite/0003_operators.sql.

CREATE TABLE operator_tokens (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL
        CHECK (role IN ('admin', 'equipment_manager', 'finance', 'supervisor')),
    token_hash TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    created_by TEXT    NOT NULL,
    revoked_at BIGINT,
    CONSTRAINT operator_tokens_name_key UNIQUE (name),
    CONSTRAINT operator_tokens_hash_key UNIQUE (token_hash)
);

-- One row per day that has its snapshot (also a day with no agencies yet): the first
-- snapshot of a day stands.
CREATE TABLE allocation_snapshot_days (
    day      TEXT    PRIMARY KEY,
    taken_at BIGINT  NOT NULL
);

-- One row per agency per day (the day in the configured local time, YYYY-MM-DD). The
-- figures are copied, not recomputed, so a later change of ratios or classes does not
-- rewrite history. `required`, `shortfall` and `compliant` are NULL for a class-C
-- agency without a target (it cannot be assessed).
CREATE TABLE allocation_snapshots (
    day                TEXT    NOT NULL REFERENCES allocation_snapshot_days (day),
    agency_id          BIGINT  NOT NULL REFERENCES agencies (id),
    agency_name        TEXT    NOT NULL,
    class              TEXT    NOT NULL CHECK (class IN ('a', 'b', 'c')),
    certified_officers BIGINT  NOT NULL,
    recorders          BIGINT  NOT NULL,
    terminals          BIGINT  NOT NULL,
    required           BIGINT,
    shortfall          BIGINT,
    compliant          BOOLEAN,
    taken_at           BIGINT  NOT NULL,
    PRIMARY KEY (day, agency_id)
);
