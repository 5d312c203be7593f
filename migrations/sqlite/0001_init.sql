-- liandong embedded store, schema 1: devices, location reports, live device state.
-- Migrations are append-only: change the schema in a new file, never edit this one.

CREATE TABLE devices (
    device_id  TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    -- post_officer | patrol_member | vehicle | other
    kind       TEXT NOT NULL,
    -- the post or patrol team the device belongs to
    unit_id    TEXT,
    -- the device's own key (OsmAnd `key=`, or a bearer token)
    key        TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- Every accepted location report, in commit order. `seq` is the global sequence number
-- of the live feed.
CREATE TABLE positions (
    seq         INTEGER PRIMARY KEY NOT NULL,
    device_id   TEXT NOT NULL,
    fix_ms      INTEGER NOT NULL,
    recv_ms     INTEGER NOT NULL,
    lon         REAL NOT NULL,
    lat         REAL NOT NULL,
    -- datum the device sent (wgs84 | gcj02 | bd09); lon/lat are always WGS 84
    datum       TEXT NOT NULL,
    speed_mps   REAL,
    course_deg  REAL,
    altitude_m  REAL,
    accuracy_m  REAL,
    battery_pct REAL,
    -- bit set: 1 jump, 2 poor accuracy, 4 out of order, 8 outside county
    flags       INTEGER NOT NULL,
    attributes  TEXT NOT NULL,
    enrichment  TEXT NOT NULL
) STRICT;

CREATE INDEX positions_device_fix ON positions (device_id, fix_ms);
CREATE INDEX positions_fix ON positions (fix_ms);

-- The live state of each device, rewritten in the same transaction as its reports, so
-- that a restart rebuilds exactly what was acknowledged.
CREATE TABLE device_state (
    device_id   TEXT PRIMARY KEY NOT NULL,
    -- the device's last report in fix-time order (a row of positions)
    seq         INTEGER NOT NULL,
    trusted_ms  INTEGER,
    trusted_lon REAL,
    trusted_lat REAL,
    marked_ms   INTEGER,
    marked_lon  REAL,
    marked_lat  REAL,
    -- fence memberships: JSON array of {"fence", "since_ms", "dwell_fired"}
    fences      TEXT NOT NULL
) STRICT;
