-- What one device holds before its recordings are stored (its unfinished recordings
-- and their staged bytes) is checked at every announcement and chunk against the
-- upload caps: read through an index of the unfinished ones only, so a device with a
-- long history of stored recordings costs no more to check than a new one.
CREATE INDEX recordings_device_unstored ON recordings (device_id) WHERE stored_at IS NULL;
