-- liandong production store, schema 12: the people who use the system (issue 15), and
-- the person a device acts for (mirrors migrations/sqlite/0011_people.sql).

-- People are never deleted: history (the audit log, incidents, handovers) keeps naming
-- them, so a person who leaves is deactivated instead.
CREATE TABLE people (
    person_id  text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    phone      text,
    -- array of the server's role names, never empty
    roles      jsonb NOT NULL,
    -- post | team | grid | judicial_office | command_centre
    unit_kind  text NOT NULL,
    -- the post, patrol team or village grid; NULL for the judicial office and the
    -- command centre, which are one each
    unit_id    text,
    active     boolean NOT NULL,
    created_ms bigint NOT NULL,
    updated_ms bigint NOT NULL
);

-- The members of one unit.
CREATE INDEX people_unit ON people (unit_id, person_id);

-- The person a device's key acts for (NULL for a shared or unbound device).
ALTER TABLE devices ADD COLUMN person_id text;
