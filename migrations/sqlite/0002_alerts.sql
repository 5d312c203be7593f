-- liandong embedded store, schema 2: cameras, camera events, watch lists and alerts.
-- Sequence numbers (seq) of camera events and alerts come from the same counter as
-- positions: the live feed's one global order.

-- Cameras that may push events: those of the map and those registered by API. The key
-- rides in the URL the camera pushes to (`/isapi/events?camera=…&key=…`).
CREATE TABLE cameras (
    camera_id  TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    -- skynet | huiyan | sharp_eyes | checkpoint | parking | face
    kind       TEXT NOT NULL,
    lon        REAL NOT NULL,
    lat        REAL NOT NULL,
    key        TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- Every camera push, whatever its type: heartbeats and unknown types are kept and
-- counted, not refused.
CREATE TABLE camera_events (
    seq               INTEGER PRIMARY KEY NOT NULL,
    camera_id         TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    -- anpr | face | heartbeat | other
    kind              TEXT NOT NULL,
    active            INTEGER NOT NULL,
    active_post_count INTEGER,
    time_ms           INTEGER NOT NULL,
    recv_ms           INTEGER NOT NULL,
    plate             TEXT,
    person_id         TEXT,
    -- the decoded event (JSON), images excluded
    payload           TEXT NOT NULL
) STRICT;

CREATE INDEX camera_events_camera_time ON camera_events (camera_id, time_ms);
CREATE INDEX camera_events_plate ON camera_events (plate) WHERE plate IS NOT NULL;

-- Watch lists (缉查布控): plates and person ids under control.
CREATE TABLE watchlist (
    watch_id   TEXT PRIMARY KEY NOT NULL,
    -- plate | person
    kind       TEXT NOT NULL,
    -- normalised plate, or person id
    value      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    -- 1 (highest) .. 5
    priority   INTEGER NOT NULL,
    valid_from INTEGER,
    valid_to   INTEGER,
    -- JSON array of the roles that may see its hits
    roles      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX watchlist_kind_value ON watchlist (kind, value);

-- Alerts raised by the rules, in the global sequence.
CREATE TABLE alerts (
    seq        INTEGER PRIMARY KEY NOT NULL,
    -- watchlist_plate | watchlist_person | …
    rule       TEXT NOT NULL,
    priority   INTEGER NOT NULL,
    camera_id  TEXT,
    event_seq  INTEGER,
    time_ms    INTEGER NOT NULL,
    lon        REAL NOT NULL,
    lat        REAL NOT NULL,
    -- JSON array of the roles that may see the alert
    roles      TEXT NOT NULL,
    -- the alert as pushed on the live feed (JSON)
    payload    TEXT NOT NULL
) STRICT;

CREATE INDEX alerts_time ON alerts (time_ms);
