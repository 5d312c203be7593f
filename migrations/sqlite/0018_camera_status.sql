-- liandong embedded store, schema 18: each camera's liveness (issue 17). A camera's row
-- is written with the commit of every push it makes (last seen), and with the commit of
-- the `camera_offline` alert its silence raised (offline since, the alert's number), so
-- that a restart neither forgets a silence nor raises it again. A camera never heard
-- from has no row.

CREATE TABLE camera_status (
    camera_id         TEXT PRIMARY KEY,
    -- the server's clock when its last push was accepted
    last_seen_ms      INTEGER NOT NULL,
    -- set while the camera is silent past cameras.offline_after_s; cleared by its next push
    offline_since_ms  INTEGER,
    offline_alert_seq INTEGER
);

-- The offline check's read: cameras heard from, not yet offline, oldest first.
CREATE INDEX camera_status_silent ON camera_status (last_seen_ms) WHERE offline_since_ms IS NULL;
