-- fieldsync store, step 8 (issue 19, point 4): a device's tamper flags are capped; the
-- chain breaks it makes beyond the cap are counted in one row per device (how many,
-- first and last time), which supervisors see beside the flags. The count only grows:
-- deleting the row is refused, and an update may not lower the count or move the first
-- time.
CREATE TABLE tamper_flag_counts (
    device_id TEXT    PRIMARY KEY REFERENCES devices (id),
    breaks    BIGINT  NOT NULL CHECK (breaks > 0),
    first_at  BIGINT  NOT NULL,
    last_at   BIGINT  NOT NULL
);
CREATE FUNCTION fieldsync_count_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.breaks < OLD.breaks OR NEW.first_at <> OLD.first_at
        OR NEW.device_id <> OLD.device_id THEN
        RAISE EXCEPTION '% only grow', TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tamper_flag_counts_only_grow BEFORE UPDATE OR DELETE ON tamper_flag_counts
    FOR EACH ROW EXECUTE FUNCTION fieldsync_count_only_grows();
CREATE TRIGGER tamper_flag_counts_no_truncate BEFORE TRUNCATE ON tamper_flag_counts
    FOR EACH STATEMENT EXECUTE FUNCTION fieldsync_append_only();
