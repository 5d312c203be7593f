-- liandong PostgreSQL store, schema 7: patrol route plans and their adjustments (as
-- migrations/sqlite/0007_route_plans.sql, with PostGIS points).

CREATE TABLE route_plans (
    plan_seq    bigint PRIMARY KEY,
    team_id     text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    kind        text NOT NULL,
    reason      text NOT NULL,
    created_ms  bigint NOT NULL,
    created_by  text NOT NULL,
    plan        text NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    status      text NOT NULL,
    acked_ms    bigint,
    acked_by    text,
    escalation  text NOT NULL,
    geom        geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE UNIQUE INDEX route_plans_team_version ON route_plans (team_id, version);
CREATE INDEX route_plans_geom ON route_plans USING gist (geom);

CREATE TABLE route_events (
    seq       bigint PRIMARY KEY,
    plan_seq  bigint NOT NULL,
    team_id   text COLLATE "C" NOT NULL,
    at_ms     bigint NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    lon       double precision NOT NULL,
    lat       double precision NOT NULL,
    payload   text NOT NULL,
    geom      geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX route_events_plan ON route_events (plan_seq, seq);
CREATE INDEX route_events_geom ON route_events USING gist (geom);
