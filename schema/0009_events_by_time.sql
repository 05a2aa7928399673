-- The console's event list (GET /api/v1/events) pages through delivery
-- events newest first. delivery_events is sorted by otp_id, so a time range
-- reads every granule of its months; this projection keeps the same rows
-- sorted by time, so a page reads the few granules at the end of its range
-- (internal/store, Events). A ReplacingMergeTree keeps a projection only if
-- told what to do with it when a merge drops duplicates: rebuild it.
ALTER TABLE {{table "delivery_events"}} {{onCluster}} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild';

ALTER TABLE {{table "delivery_events"}} {{onCluster}} ADD PROJECTION IF NOT EXISTS by_time (SELECT * ORDER BY event_time, event_id);

ALTER TABLE {{table "delivery_events"}} {{onCluster}} MATERIALIZE PROJECTION by_time;
