-- liandong embedded store, schema 8: operators acknowledge alerts. Each acknowledgement
-- is an event in the global sequence, pushed to everyone who sees the alert, so every
-- screen in the room knows the alert is being handled.

CREATE TABLE alert_acks (
    seq        INTEGER PRIMARY KEY NOT NULL,
    alert_seq  INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    note       TEXT NOT NULL,
    -- the alert's place and the roles that see it (JSON array), for the feed's filters
    lon        REAL NOT NULL,
    lat        REAL NOT NULL,
    roles      TEXT NOT NULL,
    -- the message as pushed on the live feed (JSON)
    payload    TEXT NOT NULL
) STRICT;

CREATE INDEX alert_acks_alert ON alert_acks (alert_seq, seq);
