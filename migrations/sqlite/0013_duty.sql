-- liandong embedded store, schema 14: the 24-hour duty roster (24小时值班) of the
-- command centre and each post, and the escalations of late incident steps that reach
-- the people on duty (issue 15).

-- One person's shift at one unit. A shift is never deleted: a cancelled one keeps its
-- row with the moment it was cancelled, so the roster's history stays readable.
CREATE TABLE duty_shifts (
    shift_id     TEXT PRIMARY KEY NOT NULL,
    -- command_centre | post
    unit_kind    TEXT NOT NULL,
    -- the post; NULL for the command centre, which is one
    unit_id      TEXT,
    person_id    TEXT NOT NULL,
    -- leader | on_duty
    duty         TEXT NOT NULL,
    starts_ms    INTEGER NOT NULL,
    ends_ms      INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    cancelled_ms INTEGER
) STRICT;

-- Shifts are at most 24 h long, so the shifts overlapping a window are found by their
-- start alone.
CREATE INDEX duty_shifts_start ON duty_shifts (starts_ms);

-- Every escalation event, one row each, in the global sequence: a notice that reached
-- a person (or nobody, when nobody was on duty) and that person's acknowledgement.
CREATE TABLE escalations (
    seq           INTEGER PRIMARY KEY NOT NULL,
    -- the notice this event belongs to: its own number for a notice
    escalation_id INTEGER NOT NULL,
    incident_id   INTEGER NOT NULL,
    -- notify | ack
    action        TEXT NOT NULL,
    -- post_leader | command_centre
    level         TEXT NOT NULL,
    -- the person the notice reached; NULL when nobody was on duty
    person_id     TEXT,
    -- the post whose leader was notified; NULL at the command centre
    unit_id       TEXT,
    actor         TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    note          TEXT NOT NULL,
    -- the incident's place, for the feed's viewport
    lon           REAL NOT NULL,
    lat           REAL NOT NULL,
    -- the message as pushed on the live feed (JSON)
    payload       TEXT NOT NULL
) STRICT;

CREATE INDEX escalations_notice ON escalations (escalation_id, seq);
CREATE INDEX escalations_incident ON escalations (incident_id, seq);
