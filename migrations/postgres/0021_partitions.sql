-- liandong production store, schema 21: a year of data. The two event tables that grow
-- fastest, `positions` (millions of rows a month) and `camera_events`, become tables
-- partitioned by month with PostgreSQL's declarative partitioning, so that retention
-- drops a whole month instead of deleting rows one by one, and a history query reads
-- only the months it asks about. Alerts stay one table, with an index for the counts
-- of a township over a month. (migrations/sqlite/0021 adds that index; SQLite keeps
-- its plain tables and its batch deletes.)
--
-- THE PARTITION KEY is the event's own time: `positions.fix_ms` (the device's time)
-- and `camera_events.time_ms` (the camera's), not the server's receipt time `recv_ms`:
-- - every history question filters on it: the county at a moment (`fix_ms BETWEEN
--   at - max_age AND at`), one unit's day track (device_id + fix_ms), a box over an
--   hour (bbox + fix_ms), sightings of a plate (plate + time_ms). Partitioned by
--   fix time these read one or two months; partitioned by receipt they would probe
--   every month's index, a dozen or more for a year's retention;
-- - retention has always been by fix time (`prune_positions` deletes `fix_ms <
--   cutoff`), so dropping by fix-time month keeps its meaning.
-- The cost: a device time is what the device says. The server accepts events dated
-- from `ingest.accept_past_s` before its clock (30 days by default: an offline buffer
-- uploaded late) to `accept_ahead_s` after it (10 minutes), within the decoders'
-- bounds of 2000 to 2099 (liandong-ingest `device_time`); an operator may widen the
-- window past the retention, and a month retention dropped can still receive a late
-- report. So each table has a DEFAULT partition, which takes every row no month
-- partition covers, and an accepted report can never fail to insert (an insert
-- failure would fail the whole group commit). Month partitions are created ahead of
-- time by `liandong_ensure_partitions` (the server calls it at startup for this month
-- and the next two, and daily), so the default partition holds only oddities and the
-- last reports retention keeps; when a month is created later that the default
-- partition has rows of, they are moved into it.
--
-- Months are calendar months in UTC, [first day 00:00Z, next first day 00:00Z), as
-- Unix milliseconds; partitions are named `<table>_pYYYY_MM`, the default ones
-- `<table>_default`.
--
-- A partitioned table's primary key must include the partition key: `seq` alone is
-- no longer declared unique, the key is (seq, fix_ms) / (seq, time_ms). Sequence
-- numbers stay unique because one writer at a time numbers them (the group commit's
-- advisory lock and its max(seq) check), and the key's leading `seq` still answers
-- `seq > $1` (the feed), `max(seq)` (every commit) and device_state's `p.seq = d.seq`.
-- No foreign key, trigger or ON CONFLICT refers to either table.
--
-- This migration rewrites both tables (old table renamed, rows copied into the
-- partitioned one, old table dropped), in the migration's one transaction: it takes
-- as long as copying the rows does, with ingest stopped (the server migrates before it
-- listens).

-- One month of one partitioned table: creates `<parent>_pYYYY_MM` for [month_start,
-- month_start + 1 month) unless it exists. The month is made as a table of its own,
-- given the rows of its range the default partition holds (PostgreSQL refuses a new
-- partition while the default one has rows that belong to it), then attached: ATTACH
-- takes only a SHARE UPDATE EXCLUSIVE lock on the parent, which neither ingest's
-- inserts nor history reads wait for (CREATE TABLE … PARTITION OF would take an
-- ACCESS EXCLUSIVE one), and builds the parent's indexes on the new table. It does
-- lock the default partition while it checks that none of its rows belongs to the new
-- month, which is quick while the default partition stays small (months made ahead).
-- Returns 1 when it created the partition, 0 when it existed.
CREATE FUNCTION liandong_ensure_month_partition(parent text, part_key text, month_start timestamp)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_p' || to_char(month_start, 'YYYY_MM');
    lo bigint := (extract(epoch FROM month_start) * 1000)::bigint;
    hi bigint := (extract(epoch FROM month_start + interval '1 month') * 1000)::bigint;
    cols text;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN 0;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING GENERATED)', part, parent);
    -- Every stored column but the generated ones, which PostgreSQL computes again.
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute
    WHERE attrelid = parent::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
    EXECUTE format(
        'WITH gone AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING %s) INSERT INTO %I (%s) SELECT * FROM gone',
        parent || '_default', part_key, part_key, cols, part, cols)
        USING lo, hi;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', parent, part, lo, hi);
    RETURN 1;
END
$$;

-- Creates, idempotently, every monthly partition of every partitioned table needed to
-- hold rows whose partition key is in [from_ms, to_ms) (Unix milliseconds). The range
-- is clamped to the times ingest accepts (2000 to 2099), so that a wild argument
-- cannot create thousands of tables. Returns how many partitions it created.
CREATE FUNCTION liandong_ensure_partitions(from_ms bigint, to_ms bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    first_ms bigint := greatest(from_ms, 946684800000);
    end_ms bigint := least(to_ms, 4102444800000);
    month timestamp;
    made integer := 0;
BEGIN
    IF first_ms IS NULL OR end_ms IS NULL OR end_ms <= first_ms THEN
        RETURN 0;
    END IF;
    -- One caller at a time (instances sharing the database make the same months at
    -- startup), so that the second finds the months made instead of failing to make
    -- them again. Held until the caller's transaction ends.
    PERFORM pg_advisory_xact_lock(hashtext('liandong_ensure_partitions'));
    month := date_trunc('month', to_timestamp(first_ms / 1000.0) AT TIME ZONE 'UTC');
    WHILE (extract(epoch FROM month) * 1000)::bigint < end_ms LOOP
        made := made + liandong_ensure_month_partition('positions', 'fix_ms', month);
        made := made + liandong_ensure_month_partition('camera_events', 'time_ms', month);
        month := month + interval '1 month';
    END LOOP;
    RETURN made;
END
$$;

-- The old tables step aside (their indexes and keys are dropped with them below).
ALTER TABLE positions RENAME TO positions_unpartitioned;
ALTER TABLE camera_events RENAME TO camera_events_unpartitioned;

-- The same columns in the same order as migrations 0001 and 0002 made them.
CREATE TABLE positions (
    seq         bigint NOT NULL,
    device_id   text NOT NULL,
    fix_ms      bigint NOT NULL,
    recv_ms     bigint NOT NULL,
    lon         double precision NOT NULL,
    lat         double precision NOT NULL,
    datum       text NOT NULL,
    speed_mps   double precision,
    course_deg  double precision,
    altitude_m  double precision,
    accuracy_m  double precision,
    battery_pct double precision,
    flags       bigint NOT NULL,
    attributes  text NOT NULL,
    enrichment  text NOT NULL,
    geom        geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
) PARTITION BY RANGE (fix_ms);
CREATE TABLE positions_default PARTITION OF positions DEFAULT;

CREATE TABLE camera_events (
    seq               bigint NOT NULL,
    camera_id         text NOT NULL,
    event_type        text NOT NULL,
    kind              text NOT NULL,
    active            boolean NOT NULL,
    active_post_count bigint,
    time_ms           bigint NOT NULL,
    recv_ms           bigint NOT NULL,
    plate             text,
    person_id         text,
    payload           text NOT NULL
) PARTITION BY RANGE (time_ms);
CREATE TABLE camera_events_default PARTITION OF camera_events DEFAULT;

-- A month partition for every month the old rows have up to two months ahead (a
-- later time, from a clock far ahead, goes to the default partition), found by
-- stepping down the time index month by month rather than reading every row; then
-- this month and the next two, as the server ensures at startup.
SELECT liandong_ensure_partitions(m, m + 1)
FROM (
    WITH RECURSIVE months (m) AS (
        SELECT min(fix_ms) FROM positions_unpartitioned
        UNION ALL
        SELECT (SELECT min(fix_ms) FROM positions_unpartitioned
                WHERE fix_ms >= (extract(epoch FROM date_trunc('month', to_timestamp(m / 1000.0) AT TIME ZONE 'UTC')
                                 + interval '1 month') * 1000)::bigint)
        FROM months WHERE m IS NOT NULL
    )
    SELECT m FROM months WHERE m IS NOT NULL
    UNION
    SELECT m FROM (
        WITH RECURSIVE months (m) AS (
            SELECT min(time_ms) FROM camera_events_unpartitioned
            UNION ALL
            SELECT (SELECT min(time_ms) FROM camera_events_unpartitioned
                    WHERE time_ms >= (extract(epoch FROM date_trunc('month', to_timestamp(m / 1000.0) AT TIME ZONE 'UTC')
                                      + interval '1 month') * 1000)::bigint)
            FROM months WHERE m IS NOT NULL
        )
        SELECT m FROM months WHERE m IS NOT NULL
    ) c
) old
WHERE m < (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months') * 1000)::bigint;
SELECT liandong_ensure_partitions(
    (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC')) * 1000)::bigint,
    (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months') * 1000)::bigint);

-- Every row moves, each to its month (or to the default partition).
INSERT INTO positions (seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, altitude_m,
                       accuracy_m, battery_pct, flags, attributes, enrichment)
SELECT seq, device_id, fix_ms, recv_ms, lon, lat, datum, speed_mps, course_deg, altitude_m,
       accuracy_m, battery_pct, flags, attributes, enrichment
FROM positions_unpartitioned;
INSERT INTO camera_events (seq, camera_id, event_type, kind, active, active_post_count, time_ms, recv_ms,
                           plate, person_id, payload)
SELECT seq, camera_id, event_type, kind, active, active_post_count, time_ms, recv_ms, plate, person_id, payload
FROM camera_events_unpartitioned;

DROP TABLE positions_unpartitioned;
DROP TABLE camera_events_unpartitioned;

-- Keys and indexes, built once per partition now that the rows are in (and made by
-- PostgreSQL on every partition created later). The history questions they answer:
-- - the county at a moment (DISTINCT ON device over a fix_ms window): positions_fix,
--   a range of the one or two months the window touches;
-- - one unit's day track: positions_device_fix;
-- - a 2 km box over an hour: positions_fix for the hour (a few thousand rows in a
--   county) with positions_geom, which PostgreSQL combines in a bitmap AND when the box
--   is the narrower; a GiST index on (fix_ms, geom) would need btree_gist, an extension
--   a managed server may not offer, for no gain at a county's rates;
-- - nearest units: positions_geog, on the geography cast (metres, not degrees).
ALTER TABLE positions ADD CONSTRAINT positions_pkey PRIMARY KEY (seq, fix_ms);
CREATE INDEX positions_device_fix ON positions (device_id, fix_ms);
CREATE INDEX positions_fix ON positions (fix_ms);
CREATE INDEX positions_geom ON positions USING gist (geom);
CREATE INDEX positions_geog ON positions USING gist ((geom::geography));

ALTER TABLE camera_events ADD CONSTRAINT camera_events_pkey PRIMARY KEY (seq, time_ms);
CREATE INDEX camera_events_camera_time ON camera_events (camera_id, time_ms);
CREATE INDEX camera_events_plate_time ON camera_events (plate, time_ms) WHERE plate IS NOT NULL;
CREATE INDEX camera_events_person_time ON camera_events (person_id, time_ms) WHERE person_id IS NOT NULL;

-- The alerts of a township over a month (statistics by township): one range of this
-- index instead of every alert of the month filtered by township.
CREATE INDEX alerts_township_time ON alerts (township, time_ms);
