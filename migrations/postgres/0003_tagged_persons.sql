-- liandong production store, schema 3: tagged persons (community-correction subjects and
-- other persons under shared management) and the audit log of every read of them
-- (mirrors migrations/sqlite/0003_tagged_persons.sql).

CREATE TABLE tagged_persons (
    person_id  text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    -- community_correction | …
    category   text NOT NULL,
    note       text NOT NULL,
    -- the roles entitled to see the person and their alerts (array of strings)
    roles      jsonb NOT NULL,
    updated_ms bigint NOT NULL
);

-- Append-only: who read or touched sensitive data, when, and what. `id` orders the
-- entries as they were appended.
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms   bigint NOT NULL,
    -- a user's name, `camera:ID` or `server`
    actor   text NOT NULL,
    -- e.g. list_tagged_persons, tagged_person_seen, tagged_person_saved
    action  text NOT NULL,
    subject text NOT NULL,
    detail  text NOT NULL
);

CREATE INDEX audit_log_subject ON audit_log (subject, at_ms);
