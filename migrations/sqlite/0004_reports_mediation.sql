-- liandong embedded store, schema 4: grid-member reports and the joint mediation
-- centre's queue of disputes.

CREATE TABLE grid_reports (
    report_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    -- who filed it (a grid member's token name)
    reporter    TEXT NOT NULL,
    -- dispute | hazard | suspicious | fire | traffic | other
    category    TEXT NOT NULL,
    text        TEXT NOT NULL,
    lon         REAL NOT NULL,
    lat         REAL NOT NULL,
    time_ms     INTEGER NOT NULL,
    recv_ms     INTEGER NOT NULL,
    -- township, grid, post of the place (JSON)
    enrichment  TEXT NOT NULL,
    photos      INTEGER NOT NULL,
    -- new | accepted | merged | rejected
    status      TEXT NOT NULL,
    status_note TEXT
) STRICT;

CREATE INDEX grid_reports_time ON grid_reports (time_ms);

-- Every dispute found goes to the mediation centre (三调融合: people's, judicial and
-- administrative mediation).
CREATE TABLE mediation_cases (
    case_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id      INTEGER NOT NULL REFERENCES grid_reports (report_id),
    opened_ms      INTEGER NOT NULL,
    -- pending | mediated
    status         TEXT NOT NULL,
    -- people | judicial | administrative
    mediation_type TEXT,
    outcome        TEXT,
    success        INTEGER,
    closed_ms      INTEGER,
    closed_by      TEXT
) STRICT;
