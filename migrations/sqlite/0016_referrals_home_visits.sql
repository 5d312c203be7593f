-- liandong embedded store, schema 16: after-hours referrals to the judicial office
-- (8小时外、周末节假日转办) and home visits (上门办理), issue 16. A referral registered
-- while the office is closed waits until it opens (handed_ms); its status follows from
-- its times. A home visit is assigned to a post officer or grid member, who arrives
-- (checked against their phone's position) and completes it with a note and photos.

CREATE TABLE referrals (
    referral_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    -- legal_consultation | legal_aid | mediation_request | correction_report | notarization | other
    business       TEXT NOT NULL,
    person_name    TEXT NOT NULL,
    person_phone   TEXT,
    summary        TEXT NOT NULL,
    -- the post that registered it
    post_id        TEXT NOT NULL,
    registered_by  TEXT NOT NULL,
    registered_ms  INTEGER NOT NULL,
    -- when the office sees it: registered_ms when it was open, else its next opening
    handed_ms      INTEGER NOT NULL,
    -- handed_ms plus the office hours allowed to take it up
    due_ms         INTEGER NOT NULL,
    taken_ms       INTEGER,
    taken_by       TEXT,
    done_ms        INTEGER,
    done_by        TEXT,
    note           TEXT
) STRICT;

CREATE INDEX referrals_post ON referrals (post_id, referral_id);
CREATE INDEX referrals_handed ON referrals (handed_ms);
CREATE INDEX referrals_registered ON referrals (registered_ms);

CREATE TABLE home_visits (
    visit_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    person_name        TEXT NOT NULL,
    person_phone       TEXT NOT NULL,
    lon                REAL NOT NULL,
    lat                REAL NOT NULL,
    address            TEXT,
    reason             TEXT NOT NULL,
    -- the post whose jurisdiction holds the place; NULL outside every jurisdiction
    post_id            TEXT,
    due_ms             INTEGER NOT NULL,
    assignee_id        TEXT NOT NULL,
    assignee_name      TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    -- assigned | arrived | done | cancelled
    status             TEXT NOT NULL,
    arrived_ms         INTEGER,
    arrived_distance_m REAL,
    done_ms            INTEGER,
    note               TEXT,
    -- the photos of its completion (JSON array of URLs), also in home_visit_photos
    photo_urls         TEXT NOT NULL DEFAULT '[]'
) STRICT;

CREATE INDEX home_visits_assignee ON home_visits (assignee_id, visit_id);
CREATE INDEX home_visits_post ON home_visits (post_id, visit_id);
CREATE INDEX home_visits_created ON home_visits (created_ms);

-- A completed visit's photos, by URL (`/api/v1/images/…`), so that an image's read can
-- find the visit it belongs to.
CREATE TABLE home_visit_photos (
    visit_id INTEGER NOT NULL REFERENCES home_visits (visit_id),
    url      TEXT NOT NULL,
    PRIMARY KEY (visit_id, url)
) STRICT;

CREATE INDEX home_visit_photos_url ON home_visit_photos (url);
