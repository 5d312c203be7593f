-- liandong production store, schema 4: grid-member reports and the joint mediation
-- centre's queue of disputes (mirrors migrations/sqlite/0004_reports_mediation.sql).
-- A report's id is the sequence number the sequencer gave it, and a dispute's case has
-- the same number, so neither is generated here.

CREATE TABLE grid_reports (
    report_id   bigint PRIMARY KEY,
    -- who filed it (a grid member's token name)
    reporter    text NOT NULL,
    -- dispute | hazard | suspicious | fire | traffic | other
    category    text COLLATE "C" NOT NULL,
    text        text NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    time_ms     bigint NOT NULL,
    recv_ms     bigint NOT NULL,
    -- township, grid, post of the place
    enrichment  jsonb NOT NULL,
    photos      bigint NOT NULL,
    -- new | accepted | merged | rejected
    status      text NOT NULL,
    status_note text,
    geom        geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX grid_reports_time ON grid_reports (time_ms);
CREATE INDEX grid_reports_geom ON grid_reports USING gist (geom);
CREATE INDEX grid_reports_geog ON grid_reports USING gist ((geom::geography));

-- Every dispute found goes to the mediation centre (三调融合: people's, judicial and
-- administrative mediation).
CREATE TABLE mediation_cases (
    case_id        bigint PRIMARY KEY,
    report_id      bigint NOT NULL REFERENCES grid_reports (report_id),
    opened_ms      bigint NOT NULL,
    -- pending | mediated
    status         text NOT NULL,
    -- people | judicial | administrative
    mediation_type text COLLATE "C",
    outcome        text,
    success        boolean,
    closed_ms      bigint,
    closed_by      text
);

CREATE INDEX mediation_cases_opened ON mediation_cases (opened_ms);
