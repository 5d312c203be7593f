-- liandong production store, schema 6: what the closed loop needs beyond schema 5
-- (mirrors migrations/sqlite/0006_closed_loop.sql).

-- Grid reports keep their photos (URLs of stored JPEGs, array of strings).
ALTER TABLE grid_reports ADD COLUMN photo_urls jsonb NOT NULL DEFAULT '[]';

-- What an incident is about (the alert's rule, the report's category, or what the
-- operator said) and the township it happened in: the keys of the statistics.
ALTER TABLE incidents ADD COLUMN kind text NOT NULL DEFAULT 'other';
ALTER TABLE incidents ADD COLUMN township text;
CREATE INDEX incidents_created ON incidents (created_ms);

-- The township of an alert's place, for counts by township.
ALTER TABLE alerts ADD COLUMN township text;

-- Track fusion reads one plate's or one person's sightings in time order.
DROP INDEX camera_events_plate;
CREATE INDEX camera_events_plate_time ON camera_events (plate, time_ms) WHERE plate IS NOT NULL;
CREATE INDEX camera_events_person_time ON camera_events (person_id, time_ms) WHERE person_id IS NOT NULL;

-- A tagged person's monitoring phone (a registered device), and the zones they may not
-- be in at given hours (array of {fence_kind | fence_id, from, to}).
ALTER TABLE tagged_persons ADD COLUMN device_id text;
ALTER TABLE tagged_persons ADD COLUMN zone_rules jsonb NOT NULL DEFAULT '[]';
