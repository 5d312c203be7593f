-- liandong on PostgreSQL + PostGIS, schema 9: camera snapshots and grid members' photos.
-- On the embedded store they are files in the data directory; on a shared database they
-- live here, so that every instance serves every image, whichever instance took it in.
-- Named as the server names them (`{unix ms}-{salt}-{n}.jpg`); `stored_ms` is that time.

CREATE TABLE images (
    name       text PRIMARY KEY,
    stored_ms  bigint NOT NULL,
    bytes      bytea NOT NULL
);

CREATE INDEX images_stored ON images (stored_ms);
