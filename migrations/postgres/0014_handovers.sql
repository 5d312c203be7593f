-- liandong production store, schema 14: shift handover sheets (交接班, issue 15), which
-- the outgoing person signs and the incoming person accepts (mirrors
-- migrations/sqlite/0014_handovers.sql).

CREATE TABLE handovers (
    handover_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- command_centre | post
    unit_kind          text NOT NULL,
    -- the post; NULL for the command centre, which is one
    unit_id            text,
    from_ms            bigint NOT NULL,
    to_ms              bigint NOT NULL,
    outgoing_person_id text NOT NULL,
    incoming_person_id text NOT NULL,
    -- the sheet as prepared, never changed afterwards
    sheet              jsonb NOT NULL,
    prepared_ms        bigint NOT NULL,
    -- NULL until the outgoing person signs
    signed_ms          bigint,
    signed_by          text,
    sign_note          text,
    -- NULL until the incoming person accepts (only after signing)
    accepted_ms        bigint,
    accepted_by        text,
    accept_note        text
);

-- One unit's sheets, newest first.
CREATE INDEX handovers_unit ON handovers (unit_kind, unit_id, handover_id);

-- One sheet per unit and shift: a shift's end may be seen by more than one instance
-- (or a repeated request), and the second preparation must not make a second sheet.
-- The command centre's NULL unit is made comparable, as NULLs never conflict.
CREATE UNIQUE INDEX handovers_shift ON handovers (unit_kind, COALESCE(unit_id, ''), from_ms, to_ms);
