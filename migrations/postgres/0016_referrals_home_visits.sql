-- liandong production store, schema 16: after-hours referrals to the judicial office
-- and home visits (issue 16; mirrors migrations/sqlite/0016_referrals_home_visits.sql).

CREATE TABLE referrals (
    referral_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- legal_consultation | legal_aid | mediation_request | correction_report | notarization | other
    business       text COLLATE "C" NOT NULL,
    person_name    text NOT NULL,
    person_phone   text,
    summary        text NOT NULL,
    -- the post that registered it
    post_id        text NOT NULL,
    registered_by  text NOT NULL,
    registered_ms  bigint NOT NULL,
    -- when the office sees it: registered_ms when it was open, else its next opening
    handed_ms      bigint NOT NULL,
    -- handed_ms plus the office hours allowed to take it up
    due_ms         bigint NOT NULL,
    taken_ms       bigint,
    taken_by       text,
    done_ms        bigint,
    done_by        text,
    note           text
);

CREATE INDEX referrals_post ON referrals (post_id, referral_id);
CREATE INDEX referrals_handed ON referrals (handed_ms);
CREATE INDEX referrals_registered ON referrals (registered_ms);

CREATE TABLE home_visits (
    visit_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_name        text NOT NULL,
    person_phone       text NOT NULL,
    lon                double precision NOT NULL,
    lat                double precision NOT NULL,
    address            text,
    reason             text NOT NULL,
    -- the post whose jurisdiction holds the place; NULL outside every jurisdiction
    post_id            text,
    due_ms             bigint NOT NULL,
    assignee_id        text NOT NULL,
    assignee_name      text NOT NULL,
    created_by         text NOT NULL,
    created_ms         bigint NOT NULL,
    -- assigned | arrived | done | cancelled
    status             text COLLATE "C" NOT NULL,
    arrived_ms         bigint,
    arrived_distance_m double precision,
    done_ms            bigint,
    note               text,
    -- the photos of its completion (URLs), also in home_visit_photos
    photo_urls         jsonb NOT NULL DEFAULT '[]',
    geom               geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX home_visits_assignee ON home_visits (assignee_id, visit_id);
CREATE INDEX home_visits_post ON home_visits (post_id, visit_id);
CREATE INDEX home_visits_created ON home_visits (created_ms);
CREATE INDEX home_visits_geom ON home_visits USING gist (geom);

-- A completed visit's photos, by URL, so that an image's read finds its visit.
CREATE TABLE home_visit_photos (
    visit_id bigint NOT NULL REFERENCES home_visits (visit_id),
    url      text NOT NULL,
    PRIMARY KEY (visit_id, url)
);

CREATE INDEX home_visit_photos_url ON home_visit_photos (url);
