-- Two-officer flag changes on this device's records that the gateway reported (issue
-- 21, point 6): kept, so `sync` says which records were flagged or cleared since the
-- last sync, and the highest id is the cursor of the next request (it survives a
-- restart; a change applied is never asked for again).
CREATE TABLE flag_notices (
    -- The gateway's id of the change.
    id          INTEGER PRIMARY KEY,
    sequence    INTEGER NOT NULL,
    raised      INTEGER NOT NULL CHECK (raised IN (0, 1)),
    -- The change as the gateway sent it (JSON).
    change      TEXT    NOT NULL,
    received_at INTEGER NOT NULL
);
