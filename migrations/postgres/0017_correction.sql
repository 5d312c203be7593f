-- liandong production store, schema 17: community correction (社区矫正, issue 16)
-- (mirrors migrations/sqlite/0017_correction.sql).

-- The post whose jurisdiction the person lives in; NULL for persons registered before
-- (no post officer reads them until one is set).
ALTER TABLE tagged_persons ADD COLUMN post_id text;

CREATE TABLE sanctions (
    sanction_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id   text COLLATE "C" NOT NULL REFERENCES tagged_persons (person_id),
    -- public_security_penalty | compulsory_isolation_detox | administrative_detention |
    -- case_filed | criminal_detention
    kind        text NOT NULL,
    decided_ms  bigint NOT NULL,
    -- who decided (a public security bureau, a court)
    authority   text NOT NULL,
    note        text NOT NULL,
    recorded_by text NOT NULL,
    recorded_ms bigint NOT NULL
);

-- One person's sanctions, newest first.
CREATE INDEX sanctions_person ON sanctions (person_id, sanction_id);

-- Further subjects of an audit entry beyond its own `subject`: a list read is one entry
-- naming every person read, and "who read person X" still finds it.
CREATE TABLE audit_subjects (
    audit_id bigint NOT NULL REFERENCES audit_log (id),
    subject  text NOT NULL,
    PRIMARY KEY (subject, audit_id)
);
