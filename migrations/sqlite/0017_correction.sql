-- liandong embedded store, schema 17: community correction (社区矫正, issue 16). A tagged
-- person belongs to a post's jurisdiction; the sanctions the police decided about them
-- are recorded; an audit entry may name several subjects (one entry for a list read).

-- The post whose jurisdiction the person lives in; NULL for persons registered before
-- (no post officer reads them until one is set).
ALTER TABLE tagged_persons ADD COLUMN post_id TEXT;

CREATE TABLE sanctions (
    sanction_id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id   TEXT NOT NULL REFERENCES tagged_persons (person_id),
    -- public_security_penalty | compulsory_isolation_detox | administrative_detention |
    -- case_filed | criminal_detention
    kind        TEXT NOT NULL,
    decided_ms  INTEGER NOT NULL,
    -- who decided (a public security bureau, a court)
    authority   TEXT NOT NULL,
    note        TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL
) STRICT;

-- One person's sanctions, newest first.
CREATE INDEX sanctions_person ON sanctions (person_id, sanction_id);

-- Further subjects of an audit entry beyond its own `subject`: a list read is one entry
-- naming every person read, and "who read person X" still finds it.
CREATE TABLE audit_subjects (
    audit_id INTEGER NOT NULL REFERENCES audit_log (id),
    subject  TEXT NOT NULL,
    PRIMARY KEY (subject, audit_id)
) STRICT;
