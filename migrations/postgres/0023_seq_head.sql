-- The sequence's head: the highest number committed, in a row of its own (issue 18).
--
-- Every group commit numbers its batch from the highest number committed so far, read
-- under the write lock. It was read as MAX(seq) over the eight sequenced tables; once
-- `positions` and `camera_events` are partitioned by month, that plans and locks every
-- month's primary key (more than PostgreSQL's 16 fast-path locks), so on a year of the
-- county it took 0.56 ms against 0.21 ms on an empty store, inside the lock that
-- serialises every instance's commits. The head is one row: the group commit reads it
-- when it takes the lock and sets it in the statement that announces the commit, and a
-- bulk load sets it in the transaction of its rows. It never goes down: retention can
-- drop every row of the sequence and the numbers already given out stay given out.
-- (SQLite keeps reading MAX(seq): one B-tree descent per table, no partitions; its
-- migration 0023 is empty.)

CREATE TABLE seq_head (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL CHECK (seq >= 0)
);

INSERT INTO seq_head (seq)
SELECT GREATEST(
    COALESCE((SELECT MAX(seq) FROM positions), 0),
    COALESCE((SELECT MAX(seq) FROM camera_events), 0),
    COALESCE((SELECT MAX(seq) FROM alerts), 0),
    COALESCE((SELECT MAX(seq) FROM incident_events), 0),
    COALESCE((SELECT MAX(report_id) FROM grid_reports), 0),
    COALESCE((SELECT MAX(seq) FROM route_events), 0),
    COALESCE((SELECT MAX(seq) FROM alert_acks), 0),
    COALESCE((SELECT MAX(seq) FROM escalations), 0)
);
