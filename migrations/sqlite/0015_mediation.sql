-- liandong embedded store, schema 15: the joint mediation centre's cases from every
-- source (issue 16): a grid member's dispute, an incident sent to mediation, or a walk-in
-- at the centre; each accepted by a mediator at a venue, mediated in sessions, closed
-- with an outcome and followed up. Criminal incidents that touch a dispute are linked to
-- it (民转刑).
--
-- SQLite cannot drop NOT NULL from report_id, so the table is rebuilt: a new one is
-- created, the old rows copied (a grid report's case: source grid_report, type other,
-- the report's text, place and reporter), the old one dropped and the new one renamed.
-- Nothing references mediation_cases, so the rebuild breaks no foreign key.

CREATE TABLE mediation_cases_new (
    -- a sequence number: the case's alert's (a grid report's case: the report's)
    case_id          INTEGER PRIMARY KEY,
    -- grid_report | incident | walk_in
    source           TEXT NOT NULL,
    report_id        INTEGER REFERENCES grid_reports (report_id),
    incident_id      INTEGER,
    -- neighbour | family | land | labour | consumer | traffic | property | other
    dispute_type     TEXT NOT NULL,
    summary          TEXT NOT NULL,
    -- [{"name", "phone"}] (JSON)
    parties          TEXT NOT NULL,
    lon              REAL NOT NULL,
    lat              REAL NOT NULL,
    -- township, grid, post of the place (JSON)
    place            TEXT NOT NULL,
    filed_by         TEXT NOT NULL,
    opened_ms        INTEGER NOT NULL,
    -- pending | accepted | mediated | followed_up | declined
    status           TEXT NOT NULL,
    mediator_id      TEXT,
    venue_id         TEXT,
    accepted_ms      INTEGER,
    accepted_by      TEXT,
    declined_reason  TEXT,
    -- people | judicial | administrative
    mediation_type   TEXT,
    outcome          TEXT,
    success          INTEGER,
    closed_ms        INTEGER,
    closed_by        TEXT,
    follow_up_due_ms INTEGER,
    followed_up_ms   INTEGER,
    follow_up_note   TEXT,
    followed_up_by   TEXT
) STRICT;

INSERT INTO mediation_cases_new
    (case_id, source, report_id, incident_id, dispute_type, summary, parties, lon, lat, place, filed_by,
     opened_ms, status, mediation_type, outcome, success, closed_ms, closed_by)
SELECT m.case_id, 'grid_report', m.report_id, NULL, 'other', r.text, '[]', r.lon, r.lat, r.enrichment, r.reporter,
       m.opened_ms, m.status, m.mediation_type, m.outcome, m.success, m.closed_ms, m.closed_by
FROM mediation_cases m JOIN grid_reports r ON r.report_id = m.report_id;

DROP TABLE mediation_cases;
ALTER TABLE mediation_cases_new RENAME TO mediation_cases;

CREATE INDEX mediation_cases_opened ON mediation_cases (opened_ms);
CREATE INDEX mediation_cases_report ON mediation_cases (report_id);
CREATE INDEX mediation_cases_status ON mediation_cases (status, case_id);
-- The case of an incident sent to mediation (a second send is refused by the server).
CREATE INDEX mediation_cases_incident ON mediation_cases (incident_id) WHERE incident_id IS NOT NULL;

-- A case's mediation sessions, numbered from 1 per case.
CREATE TABLE mediation_sessions (
    case_id     INTEGER NOT NULL REFERENCES mediation_cases (case_id),
    session_no  INTEGER NOT NULL,
    starts_ms   INTEGER NOT NULL,
    venue_id    TEXT,
    -- where, when not at a venue (free text or JSON as given)
    place       TEXT,
    note        TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL,
    PRIMARY KEY (case_id, session_no)
) STRICT;

-- The steps of a case that ran late and were escalated (mediation_overdue alerts): one
-- row per case and step, so that a restart does not raise the same alert again.
CREATE TABLE mediation_overdue (
    case_id   INTEGER NOT NULL,
    -- accept | resolve | follow_up
    step      TEXT NOT NULL,
    alert_seq INTEGER NOT NULL,
    due_ms    INTEGER NOT NULL,
    PRIMARY KEY (case_id, step)
) STRICT;

-- Criminal incidents that touched a dispute (民转刑): by a party (name and phone) or by
-- the place. One row per incident and case.
CREATE TABLE dispute_links (
    incident_id INTEGER NOT NULL,
    case_id     INTEGER NOT NULL,
    -- party | place
    reason      TEXT NOT NULL,
    alert_seq   INTEGER NOT NULL,
    linked_ms   INTEGER NOT NULL,
    PRIMARY KEY (incident_id, case_id)
) STRICT;

CREATE INDEX dispute_links_case ON dispute_links (case_id);
