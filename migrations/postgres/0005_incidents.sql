-- liandong production store, schema 5: incidents and their timelines (mirrors
-- migrations/sqlite/0005_incidents.sql). Every change of an incident is an event in the
-- global sequence (the live feed's order).

CREATE TABLE incidents (
    -- the sequence number of the event that created it
    incident_id     bigint PRIMARY KEY,
    title           text NOT NULL,
    priority        bigint NOT NULL,
    -- new | dispatched | signed_for | en_route | on_scene | feedback | closed | cancelled
    state           text NOT NULL,
    lon             double precision NOT NULL,
    lat             double precision NOT NULL,
    alert_seq       bigint,
    assigned_device text,
    assigned_unit   text,
    created_ms      bigint NOT NULL,
    state_since_ms  bigint NOT NULL,
    -- none | post_leader | command_centre: the escalation of the current step
    escalation      text NOT NULL,
    geom            geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX incidents_state ON incidents (state);
CREATE INDEX incidents_geom ON incidents USING gist (geom);
CREATE INDEX incidents_geog ON incidents USING gist ((geom::geography));

CREATE TABLE incident_events (
    seq         bigint PRIMARY KEY,
    incident_id bigint NOT NULL,
    at_ms       bigint NOT NULL,
    actor       text NOT NULL,
    -- create | dispatch | sign | depart | arrive | feedback | close | cancel | escalate
    action      text NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    note        text NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    unit_id     text,
    -- the message as pushed on the live feed (JSON text)
    payload     text NOT NULL,
    geom        geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
);

CREATE INDEX incident_events_incident ON incident_events (incident_id, seq);
CREATE INDEX incident_events_geom ON incident_events USING gist (geom);
CREATE INDEX incident_events_geog ON incident_events USING gist ((geom::geography));
