-- The history questions answered from the indexes alone (issue 18).
--
-- A year of the county is 50 million positions, 40 GB with their indexes: more than the
-- page cache of the reference machine, so a history question about an old day reads from
-- disk, and what it costs is the number of pages it reads. Each unit's rows of a day lie
-- on as many heap pages as it has fixes (the table is in arrival order, every unit's
-- fixes interleaved with the others'): one unit's day track read 548 heap pages for 547
-- fixes, 138 ms cold, where the target is 20 ms at p99.
--
-- So the two time indexes of `positions` carry what the questions read, and a question
-- is an index-only scan (the visibility map of a month settles once autovacuum has seen
-- it, which for the closed months of a year is always):
-- - `positions_device_fix` (device_id, fix_ms) INCLUDE (seq, lon, lat, flags): one unit's
--   track (seq, fix_ms, lon, lat, filtered on flags) reads the few leaf pages its entries
--   fill, side by side;
-- - `positions_fix` (fix_ms) INCLUDE (device_id, seq, lon, lat, flags): the county at a
--   moment and a box over an hour choose each unit's last good fix of the window, and
--   the box, from the index; the whole rows are then read for the chosen fixes only (a
--   few hundred at most), by the primary key.
-- The keys are unchanged, so every other reader of these indexes (the newest fix of a
-- device, retention, the feed's catch-up) uses them as before. They are larger (about
-- 32 and 40 more bytes a row), the price of not reading the table.
--
-- Rebuilding both indexes takes as long as reading the table once per index, in this
-- migration's transaction, with ingest stopped (the server migrates before it listens):
-- a few minutes for a year. Months created later get the same indexes from the parent.
-- (SQLite keeps its indexes: its migration 0022 is empty.)

DROP INDEX positions_device_fix;
CREATE INDEX positions_device_fix ON positions (device_id, fix_ms) INCLUDE (seq, lon, lat, flags);
DROP INDEX positions_fix;
CREATE INDEX positions_fix ON positions (fix_ms) INCLUDE (device_id, seq, lon, lat, flags);
