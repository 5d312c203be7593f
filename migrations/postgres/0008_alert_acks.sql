-- liandong on PostgreSQL + PostGIS, schema 8: operators acknowledge alerts, each
-- acknowledgement an event in the global sequence (see the SQLite schema 8).

CREATE TABLE alert_acks (
    seq        bigint PRIMARY KEY,
    alert_seq  bigint NOT NULL,
    actor      text NOT NULL,
    at_ms      bigint NOT NULL,
    note       text NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    roles      jsonb NOT NULL,
    payload    text NOT NULL
);

CREATE INDEX alert_acks_alert ON alert_acks (alert_seq, seq);
