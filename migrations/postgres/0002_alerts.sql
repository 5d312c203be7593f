-- liandong production store, schema 2: cameras, camera events, watch lists and alerts
-- (mirrors migrations/sqlite/0002_alerts.sql). Sequence numbers (seq) of camera events
-- and alerts come from the same counter as positions: the live feed's one global order.

-- Cameras that may push events: those of the map and those registered by API. The key
-- rides in the URL the camera pushes to (`/isapi/events?camera=…&key=…`).
CREATE TABLE cameras (
    camera_id  text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    -- skynet | huiyan | sharp_eyes | checkpoint | parking | face
    kind       text NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    key        text NOT NULL,
    updated_ms bigint NOT NULL,
    geom       geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX cameras_geom ON cameras USING gist (geom);
CREATE INDEX cameras_geog ON cameras USING gist ((geom::geography));

-- Every camera push, whatever its type: heartbeats and unknown types are kept and
-- counted, not refused. A camera event has no place of its own: it is the camera's.
CREATE TABLE camera_events (
    seq               bigint PRIMARY KEY,
    camera_id         text NOT NULL,
    event_type        text NOT NULL,
    -- anpr | face | heartbeat | other
    kind              text NOT NULL,
    active            boolean NOT NULL,
    active_post_count bigint,
    time_ms           bigint NOT NULL,
    recv_ms           bigint NOT NULL,
    plate             text,
    person_id         text,
    -- the decoded event (JSON text), images excluded
    payload           text NOT NULL
);

CREATE INDEX camera_events_camera_time ON camera_events (camera_id, time_ms);
CREATE INDEX camera_events_plate ON camera_events (plate) WHERE plate IS NOT NULL;

-- Watch lists (缉查布控): plates and person ids under control.
CREATE TABLE watchlist (
    watch_id   text COLLATE "C" PRIMARY KEY,
    -- plate | person
    kind       text NOT NULL,
    -- normalised plate, or person id
    value      text NOT NULL,
    reason     text NOT NULL,
    -- 1 (highest) .. 5
    priority   bigint NOT NULL,
    valid_from bigint,
    valid_to   bigint,
    -- the roles that may see its hits (array of strings)
    roles      jsonb NOT NULL,
    updated_ms bigint NOT NULL
);

CREATE UNIQUE INDEX watchlist_kind_value ON watchlist (kind, value);

-- Alerts raised by the rules, in the global sequence.
CREATE TABLE alerts (
    seq        bigint PRIMARY KEY,
    -- watchlist_plate | watchlist_person | …
    rule       text NOT NULL,
    priority   bigint NOT NULL,
    camera_id  text,
    event_seq  bigint,
    time_ms    bigint NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    -- the roles that may see the alert (array of strings)
    roles      jsonb NOT NULL,
    -- the alert as pushed on the live feed (JSON text)
    payload    text NOT NULL,
    geom       geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX alerts_time ON alerts (time_ms);
CREATE INDEX alerts_geom ON alerts USING gist (geom);
CREATE INDEX alerts_geog ON alerts USING gist ((geom::geography));
