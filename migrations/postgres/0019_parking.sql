-- liandong PostgreSQL store, schema 19: parking records (违停抓拍, issue 17); see the
-- embedded store's 0019 for what each column means. The same columns plus a PostGIS
-- point with GiST indexes, like every table with a place.

CREATE TABLE parking_records (
    seq              bigint PRIMARY KEY,
    camera_id        text NOT NULL,
    plate            text NOT NULL,
    time_ms          bigint NOT NULL,
    lon              double precision NOT NULL,
    lat              double precision NOT NULL,
    township         text,
    post_id          text,
    fence_id         text,
    window_start_ms  bigint,
    alert_seq        bigint,
    geom             geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX parking_records_time ON parking_records (time_ms);
CREATE INDEX parking_records_fence_time ON parking_records (fence_id, time_ms);
CREATE INDEX parking_records_camera_time ON parking_records (camera_id, time_ms);
CREATE INDEX parking_records_plate_time ON parking_records (plate, time_ms);
CREATE INDEX parking_records_post_time ON parking_records (post_id, time_ms);
CREATE INDEX parking_records_alerted ON parking_records (window_start_ms) WHERE alert_seq IS NOT NULL;
CREATE INDEX parking_records_geom ON parking_records USING gist (geom);
CREATE INDEX parking_records_geog ON parking_records USING gist ((geom::geography));
