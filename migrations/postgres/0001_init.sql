-- liandong production store (PostgreSQL + PostGIS), schema 1: devices, location reports,
-- live device state. Mirrors migrations/sqlite/0001_init.sql column for column, so that
-- both stores answer the same queries; migrations are append-only, as there.
--
-- Every table with a place keeps the plain lon/lat (WGS 84 degrees) the server binds
-- and reads, plus a generated `geom` point that GIS tools (QGIS, `ogrinfo PG:…`) show as
-- a layer. Distances must be asked of `geom::geography` (metres on the spheroid), never
-- of `geom` itself, whose `<->` and ST_Distance work in degrees and mis-order
-- neighbours at Dazhu's latitude; hence a second GiST index on the geography cast.
--
-- Identifiers that the store returns sorted (device, camera, watch-list and person ids,
-- categories) are `COLLATE "C"`: byte order, as SQLite's BINARY collation sorts, and
-- independent of the locale the cluster was created with.

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE devices (
    device_id  text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    -- post_officer | patrol_member | vehicle | other
    kind       text NOT NULL,
    -- the post or patrol team the device belongs to
    unit_id    text,
    -- the device's own key (OsmAnd `key=`, or a bearer token)
    key        text NOT NULL,
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL
);

-- Every accepted location report, in commit order. `seq` is the global sequence number
-- of the live feed.
CREATE TABLE positions (
    seq         bigint PRIMARY KEY,
    device_id   text NOT NULL,
    fix_ms      bigint NOT NULL,
    recv_ms     bigint NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    -- datum the device sent (wgs84 | gcj02 | bd09); lon/lat are always WGS 84
    datum       text NOT NULL,
    speed_mps   double precision,
    course_deg  double precision,
    altitude_m  double precision,
    accuracy_m  double precision,
    battery_pct double precision,
    -- bit set: 1 jump, 2 poor accuracy, 4 out of order, 8 outside county
    flags       bigint NOT NULL,
    -- JSON kept as the text the server wrote: the store hands it back byte for byte
    attributes  text NOT NULL,
    enrichment  text NOT NULL,
    geom        geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX positions_device_fix ON positions (device_id, fix_ms);
CREATE INDEX positions_fix ON positions (fix_ms);
CREATE INDEX positions_geom ON positions USING gist (geom);
CREATE INDEX positions_geog ON positions USING gist ((geom::geography));

-- The live state of each device, rewritten in the same transaction as its reports, so
-- that a restart rebuilds exactly what was acknowledged.
CREATE TABLE device_state (
    device_id   text COLLATE "C" PRIMARY KEY,
    -- the device's last report in fix-time order (a row of positions)
    seq         bigint NOT NULL,
    trusted_ms  bigint,
    trusted_lon double precision,
    trusted_lat double precision,
    marked_ms   bigint,
    marked_lon  double precision,
    marked_lat  double precision,
    -- fence memberships: [{"fence", "since_ms", "dwell_fired"}]
    fences      jsonb NOT NULL,
    -- the trusted fix, where the map shows the device (NULL until it has one)
    geom        geometry(Point, 4326)
                GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(trusted_lon, trusted_lat), 4326)) STORED
);

CREATE INDEX device_state_geom ON device_state USING gist (geom);
CREATE INDEX device_state_geog ON device_state USING gist ((geom::geography));
