-- Recordings (audio/video) registered on the device, waiting for upload (DOMAIN R2).
-- The file lives in <data>/media/<recording_id>; it is deleted only after the gateway
-- says the recording is stored ('stored'), never before; copy_deleted records that
-- the file is gone (a crash between the two is finished on the next start). 'adding' rows are files
-- being moved into the media folder (finished on the next start); 'refused' rows are
-- kept with the gateway's reason and their file.
CREATE TABLE recordings (
    recording_id     TEXT    PRIMARY KEY,
    path             TEXT    NOT NULL,
    source           TEXT,
    sha256           BLOB    NOT NULL CHECK (length(sha256) = 32),
    size             INTEGER NOT NULL CHECK (size >= 0),
    media            TEXT    NOT NULL CHECK (media IN ('audio', 'video')),
    started_at       INTEGER NOT NULL,
    ended_at         INTEGER NOT NULL,
    case_number      TEXT,
    officer          TEXT,
    added_at         INTEGER NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('adding', 'pending', 'stored', 'refused')),
    announced        INTEGER NOT NULL DEFAULT 0,
    gateway_deadline INTEGER,
    gateway_offset   INTEGER NOT NULL DEFAULT 0,
    stored_at        INTEGER,
    copy_deleted     INTEGER NOT NULL DEFAULT 0,
    reason           TEXT
);
CREATE INDEX recordings_pending ON recordings (state, ended_at);
