-- liandong embedded store, schema 5: incidents and their timelines. Every change of an
-- incident is an event in the global sequence (the live feed's order).

CREATE TABLE incidents (
    -- the sequence number of the event that created it
    incident_id     INTEGER PRIMARY KEY NOT NULL,
    title           TEXT NOT NULL,
    priority        INTEGER NOT NULL,
    -- new | dispatched | signed_for | en_route | on_scene | feedback | closed | cancelled
    state           TEXT NOT NULL,
    lon             REAL NOT NULL,
    lat             REAL NOT NULL,
    alert_seq       INTEGER,
    assigned_device TEXT,
    assigned_unit   TEXT,
    created_ms      INTEGER NOT NULL,
    state_since_ms  INTEGER NOT NULL,
    -- none | post_leader | command_centre: the escalation of the current step
    escalation      TEXT NOT NULL
) STRICT;

CREATE INDEX incidents_state ON incidents (state);

CREATE TABLE incident_events (
    seq         INTEGER PRIMARY KEY NOT NULL,
    incident_id INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    -- create | dispatch | sign | depart | arrive | feedback | close | cancel | escalate
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    note        TEXT NOT NULL,
    lon         REAL NOT NULL,
    lat         REAL NOT NULL,
    unit_id     TEXT,
    -- the message as pushed on the live feed (JSON)
    payload     TEXT NOT NULL
) STRICT;

CREATE INDEX incident_events_incident ON incident_events (incident_id, seq);
