-- liandong embedded store, schema 21 (the number of migrations/postgres/0021, which
-- partitions positions and camera events by month on PostgreSQL). SQLite keeps plain
-- tables and deletes old reports in batches; what both stores share is the index for
-- the alerts of a township over a month (statistics by township): one range of it
-- instead of every alert of the month filtered by township.
CREATE INDEX alerts_township_time ON alerts (township, time_ms);

-- Retention deletes camera events by time (`store.retention_days`), oldest first.
CREATE INDEX camera_events_time ON camera_events (time_ms);
