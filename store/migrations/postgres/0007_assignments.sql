-- Each assignment a device has had (agency and officer), from when (gateway time), so
-- the upload report counts a recording under the agency and officer of its recording
-- time, not the device's current ones (issue 21). Written by every enrollment and
-- assignment; existing devices start with their current assignment.
CREATE TABLE device_assignments (
    id        BIGSERIAL PRIMARY KEY,
    device_id TEXT      NOT NULL REFERENCES devices (id),
    agency_id BIGINT    REFERENCES agencies (id),
    officer   TEXT      REFERENCES officers (certificate_number),
    since     BIGINT    NOT NULL
);
CREATE INDEX device_assignments_since ON device_assignments (device_id, since);
INSERT INTO device_assignments (device_id, agency_id, officer, since)
    SELECT id, agency_id, assigned_officer, enrolled_at FROM devices;
CREATE TRIGGER device_assignments_no_change BEFORE UPDATE OR DELETE ON device_assignments
    FOR EACH ROW EXECUTE FUNCTION fieldsync_append_only();
CREATE TRIGGER device_assignments_no_truncate BEFORE TRUNCATE ON device_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION fieldsync_append_only();
