-- liandong embedded store, schema 7: patrol route plans and their adjustments. Every
-- version of a team's plan is kept; each change (pushed, acknowledged, superseded,
-- escalated) is an event in the global sequence, pushed to the team's leader.

CREATE TABLE route_plans (
    -- the sequence number of the event that pushed it
    plan_seq    INTEGER PRIMARY KEY NOT NULL,
    team_id     TEXT NOT NULL,
    -- 1, 2, … per team
    version     INTEGER NOT NULL,
    -- plan | diversion | manual
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    -- the plan (JSON): geometry, waypoints with planned times, expected coverage
    plan        TEXT NOT NULL,
    lon         REAL NOT NULL,
    lat         REAL NOT NULL,
    -- pending | acknowledged | superseded
    status      TEXT NOT NULL,
    acked_ms    INTEGER,
    acked_by    TEXT,
    -- none | post_leader | command_centre: how far a missing acknowledgement went
    escalation  TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX route_plans_team_version ON route_plans (team_id, version);

CREATE TABLE route_events (
    seq       INTEGER PRIMARY KEY NOT NULL,
    plan_seq  INTEGER NOT NULL,
    team_id   TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    -- push | ack | supersede | escalate
    action    TEXT NOT NULL,
    lon       REAL NOT NULL,
    lat       REAL NOT NULL,
    -- the message as pushed on the live feed (JSON)
    payload   TEXT NOT NULL
) STRICT;

CREATE INDEX route_events_plan ON route_events (plan_seq, seq);
