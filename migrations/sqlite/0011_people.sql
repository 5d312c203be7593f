-- liandong embedded store, schema 12: the people who use the system (issue 15), and the
-- person a device acts for.

-- People are never deleted: history (the audit log, incidents, handovers) keeps naming
-- them, so a person who leaves is deactivated instead.
CREATE TABLE people (
    person_id  TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    phone      TEXT,
    -- JSON array of the server's role names, never empty
    roles      TEXT NOT NULL,
    -- post | team | grid | judicial_office | command_centre
    unit_kind  TEXT NOT NULL,
    -- the post, patrol team or village grid; NULL for the judicial office and the
    -- command centre, which are one each
    unit_id    TEXT,
    active     INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- The members of one unit.
CREATE INDEX people_unit ON people (unit_id, person_id);

-- The person a device's key acts for (NULL for a shared or unbound device).
ALTER TABLE devices ADD COLUMN person_id TEXT;
