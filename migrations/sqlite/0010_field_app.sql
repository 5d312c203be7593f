-- liandong embedded store, schema 11: what the field app reads (issue 14).

-- An officer's feedback names the photos it sent (URLs of stored JPEGs, JSON array), so
-- the incident's timeline shows them.
ALTER TABLE incident_events ADD COLUMN photo_urls TEXT NOT NULL DEFAULT '[]';

-- The incident a reviewed report became (accepted) or joined (merged), so a grid member's
-- list of their own reports can show its state. Reviews before this schema wrote it only
-- into the note, as "incident N".
ALTER TABLE grid_reports ADD COLUMN incident_id INTEGER;
UPDATE grid_reports SET incident_id = CAST(substr(status_note, 10) AS INTEGER)
 WHERE status IN ('accepted', 'merged') AND status_note GLOB 'incident [0-9]*'
   AND substr(status_note, 10) NOT GLOB '*[^0-9]*';

-- A grid member's own reports, newest first.
CREATE INDEX grid_reports_reporter ON grid_reports (reporter, report_id);

-- The tasks of one phone or one unit.
CREATE INDEX incidents_assigned_device ON incidents (assigned_device) WHERE assigned_device IS NOT NULL;
CREATE INDEX incidents_assigned_unit ON incidents (assigned_unit) WHERE assigned_unit IS NOT NULL;
