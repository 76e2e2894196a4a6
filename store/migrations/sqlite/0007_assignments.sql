-- Each assignment a device has had (agency and officer), from when (gateway time), so
-- the upload report counts a recording under the agency and officer of its recording
-- time, not the device's current ones (issue 21). Written by every enrollment and
-- assignment; existing devices start with their current assignment.
CREATE TABLE device_assignments (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT    NOT NULL REFERENCES devices (id),
    agency_id INTEGER REFERENCES agencies (id),
    officer   TEXT    REFERENCES officers (certificate_number),
    since     INTEGER NOT NULL
);
CREATE INDEX device_assignments_since ON device_assignments (device_id, since);
INSERT INTO device_assignments (device_id, agency_id, officer, since)
    SELECT id, agency_id, assigned_officer, enrolled_at FROM devices;
CREATE TRIGGER device_assignments_no_update BEFORE UPDATE ON device_assignments
BEGIN SELECT RAISE(ABORT, 'device_assignments is append-only'); END;
CREATE TRIGGER device_assignments_no_delete BEFORE DELETE ON device_assignments
BEGIN SELECT RAISE(ABORT, 'device_assignments is append-only'); END;
