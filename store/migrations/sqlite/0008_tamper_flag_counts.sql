-- fieldsync store, step 8 (issue 19, point 4): a device's tamper flags are capped; the
-- chain breaks it makes beyond the cap are counted in one row per device (how many,
-- first and last time), which supervisors see beside the flags. The count only grows:
-- deleting the row is refused, and an update may not lower the count or move the first
-- time.
CREATE TABLE tamper_flag_counts (
    device_id TEXT    PRIMARY KEY REFERENCES devices (id),
    breaks    INTEGER NOT NULL CHECK (breaks > 0),
    first_at  INTEGER NOT NULL,
    last_at   INTEGER NOT NULL
);
CREATE TRIGGER tamper_flag_counts_only_grow BEFORE UPDATE ON tamper_flag_counts
WHEN NEW.breaks < OLD.breaks OR NEW.first_at <> OLD.first_at OR NEW.device_id <> OLD.device_id
BEGIN SELECT RAISE(ABORT, 'tamper_flag_counts only grow'); END;
CREATE TRIGGER tamper_flag_counts_no_delete BEFORE DELETE ON tamper_flag_counts
BEGIN SELECT RAISE(ABORT, 'tamper_flag_counts only grow'); END;
