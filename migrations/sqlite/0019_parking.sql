-- liandong embedded store, schema 19: parking records (违停抓拍, issue 17). Every plate a
-- parking capture reads is a record, written in the same group commit as its camera
-- event (seq is the event's number): the plate, the camera, the capture's time and place,
-- the township and the post whose jurisdiction it is in, and the no-parking fence it is
-- inside, if any. A capture inside a fence during the fence's hours is a violation: the
-- window it fell in is kept (its start identifies it), and the alert raised for the
-- plate in that fence and window names the record that raised it.

CREATE TABLE parking_records (
    seq              INTEGER PRIMARY KEY,
    camera_id        TEXT NOT NULL,
    plate            TEXT NOT NULL,
    time_ms          INTEGER NOT NULL,
    lon              REAL NOT NULL,
    lat              REAL NOT NULL,
    township         TEXT,
    post_id          TEXT,
    -- the no-parking fence the place is inside, if any
    fence_id         TEXT,
    -- the start of the fence's window in force at time_ms: set only for a violation
    window_start_ms  INTEGER,
    -- the no_parking alert this record raised (the first of its plate, fence and window)
    alert_seq        INTEGER
);

-- statistics by time and by place over a range
CREATE INDEX parking_records_time ON parking_records (time_ms);
CREATE INDEX parking_records_fence_time ON parking_records (fence_id, time_ms);
CREATE INDEX parking_records_camera_time ON parking_records (camera_id, time_ms);
CREATE INDEX parking_records_plate_time ON parking_records (plate, time_ms);
CREATE INDEX parking_records_post_time ON parking_records (post_id, time_ms);
-- the alerts already raised, rebuilt at start so that a restart does not raise them again
CREATE INDEX parking_records_alerted ON parking_records (window_start_ms) WHERE alert_seq IS NOT NULL;
