-- liandong production store, schema 14: the 24-hour duty roster and the escalations
-- that reach the people on duty (issue 15; mirrors migrations/sqlite/0013_duty.sql).

-- One person's shift at one unit; cancelled shifts are kept with the moment.
CREATE TABLE duty_shifts (
    shift_id     text COLLATE "C" PRIMARY KEY,
    -- command_centre | post (sorted by bytes, as SQLite sorts)
    unit_kind    text COLLATE "C" NOT NULL,
    -- the post; NULL for the command centre
    unit_id      text COLLATE "C",
    person_id    text NOT NULL,
    -- leader | on_duty
    duty         text NOT NULL,
    starts_ms    bigint NOT NULL,
    ends_ms      bigint NOT NULL,
    created_ms   bigint NOT NULL,
    created_by   text NOT NULL,
    cancelled_ms bigint
);

-- Shifts are at most 24 h long, so the shifts overlapping a window are found by their
-- start alone.
CREATE INDEX duty_shifts_start ON duty_shifts (starts_ms);

-- Every escalation event in the global sequence: a notice and its acknowledgement.
CREATE TABLE escalations (
    seq           bigint PRIMARY KEY,
    escalation_id bigint NOT NULL,
    incident_id   bigint NOT NULL,
    -- notify | ack
    action        text NOT NULL,
    -- post_leader | command_centre
    level         text NOT NULL,
    person_id     text,
    unit_id       text,
    actor         text NOT NULL,
    at_ms         bigint NOT NULL,
    note          text NOT NULL,
    lon           double precision NOT NULL,
    lat           double precision NOT NULL,
    payload       text NOT NULL
);

CREATE INDEX escalations_notice ON escalations (escalation_id, seq);
CREATE INDEX escalations_incident ON escalations (incident_id, seq);
