-- liandong embedded store, schema 14: shift handover sheets (交接班, issue 15). The
-- server prepares a sheet for a unit and a shift; the outgoing person signs it and the
-- incoming person then accepts it. Sheets are kept: they are the record of who handed
-- what to whom.

CREATE TABLE handovers (
    handover_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- command_centre | post
    unit_kind          TEXT NOT NULL,
    -- the post; NULL for the command centre, which is one
    unit_id            TEXT,
    from_ms            INTEGER NOT NULL,
    to_ms              INTEGER NOT NULL,
    outgoing_person_id TEXT NOT NULL,
    incoming_person_id TEXT NOT NULL,
    -- the sheet as prepared (JSON object), never changed afterwards
    sheet              TEXT NOT NULL,
    prepared_ms        INTEGER NOT NULL,
    -- NULL until the outgoing person signs
    signed_ms          INTEGER,
    signed_by          TEXT,
    sign_note          TEXT,
    -- NULL until the incoming person accepts (only after signing)
    accepted_ms        INTEGER,
    accepted_by        TEXT,
    accept_note        TEXT
) STRICT;

-- One unit's sheets, newest first.
CREATE INDEX handovers_unit ON handovers (unit_kind, unit_id, handover_id);

-- One sheet per unit and shift: a shift's end may be seen by more than one instance
-- (or a repeated request), and the second preparation must not make a second sheet.
-- The command centre's NULL unit is made comparable, as NULLs never conflict.
CREATE UNIQUE INDEX handovers_shift ON handovers (unit_kind, COALESCE(unit_id, ''), from_ms, to_ms);
