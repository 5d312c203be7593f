-- liandong embedded store, schema 3: tagged persons (community-correction subjects and
-- other persons under shared management) and the audit log of every read of them.

CREATE TABLE tagged_persons (
    person_id  TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    -- community_correction | …
    category   TEXT NOT NULL,
    note       TEXT NOT NULL,
    -- JSON array of the roles entitled to see the person and their alerts
    roles      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- Append-only: who read or touched sensitive data, when, and what.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    -- a user's name, `camera:ID` or `server`
    actor   TEXT NOT NULL,
    -- e.g. list_tagged_persons, tagged_person_seen, tagged_person_saved
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_subject ON audit_log (subject, at_ms);
