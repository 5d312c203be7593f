-- liandong production store, schema 15: the joint mediation centre's cases from every
-- source (issue 16; mirrors migrations/sqlite/0015_mediation.sql, which rebuilds the
-- table where this alters it). Old rows are a grid report's cases: source grid_report,
-- type other, the report's text, place and reporter.

ALTER TABLE mediation_cases
    ALTER COLUMN report_id DROP NOT NULL,
    ADD COLUMN source           text,
    ADD COLUMN incident_id      bigint,
    ADD COLUMN dispute_type     text COLLATE "C",
    ADD COLUMN summary          text,
    ADD COLUMN parties          jsonb,
    ADD COLUMN lon              double precision,
    ADD COLUMN lat              double precision,
    ADD COLUMN place            jsonb,
    ADD COLUMN filed_by         text,
    ADD COLUMN mediator_id      text,
    ADD COLUMN venue_id         text,
    ADD COLUMN accepted_ms      bigint,
    ADD COLUMN accepted_by      text,
    ADD COLUMN declined_reason  text,
    ADD COLUMN follow_up_due_ms bigint,
    ADD COLUMN followed_up_ms   bigint,
    ADD COLUMN follow_up_note   text,
    ADD COLUMN followed_up_by   text;

UPDATE mediation_cases m
SET source = 'grid_report', dispute_type = 'other', summary = r.text, parties = '[]'::jsonb,
    lon = r.lon, lat = r.lat, place = r.enrichment, filed_by = r.reporter
FROM grid_reports r WHERE r.report_id = m.report_id;

ALTER TABLE mediation_cases
    ALTER COLUMN source SET NOT NULL,
    ALTER COLUMN dispute_type SET NOT NULL,
    ALTER COLUMN summary SET NOT NULL,
    ALTER COLUMN parties SET NOT NULL,
    ALTER COLUMN lon SET NOT NULL,
    ALTER COLUMN lat SET NOT NULL,
    ALTER COLUMN place SET NOT NULL,
    ALTER COLUMN filed_by SET NOT NULL,
    ADD COLUMN geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED;

CREATE INDEX mediation_cases_report ON mediation_cases (report_id);
CREATE INDEX mediation_cases_status ON mediation_cases (status, case_id);
CREATE INDEX mediation_cases_incident ON mediation_cases (incident_id) WHERE incident_id IS NOT NULL;
CREATE INDEX mediation_cases_geom ON mediation_cases USING gist (geom);
CREATE INDEX mediation_cases_geog ON mediation_cases USING gist ((geom::geography));

-- A case's mediation sessions, numbered from 1 per case.
CREATE TABLE mediation_sessions (
    case_id     bigint NOT NULL REFERENCES mediation_cases (case_id),
    session_no  bigint NOT NULL,
    starts_ms   bigint NOT NULL,
    venue_id    text,
    place       text,
    note        text NOT NULL,
    recorded_by text NOT NULL,
    recorded_ms bigint NOT NULL,
    PRIMARY KEY (case_id, session_no)
);

-- The steps of a case that ran late and were escalated: one row per case and step.
CREATE TABLE mediation_overdue (
    case_id   bigint NOT NULL,
    -- accept | resolve | follow_up
    step      text NOT NULL,
    alert_seq bigint NOT NULL,
    due_ms    bigint NOT NULL,
    PRIMARY KEY (case_id, step)
);

-- Criminal incidents that touched a dispute (民转刑), by party or place.
CREATE TABLE dispute_links (
    incident_id bigint NOT NULL,
    case_id     bigint NOT NULL,
    -- party | place
    reason      text NOT NULL,
    alert_seq   bigint NOT NULL,
    linked_ms   bigint NOT NULL,
    PRIMARY KEY (incident_id, case_id)
);

CREATE INDEX dispute_links_case ON dispute_links (case_id);
