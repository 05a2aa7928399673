-- The method tables (0010) and the journey links mark the hours they can
-- change, as delivery events do (0008): one view per input table into
-- rollup_dirty, each fact at t marking hour(t) − 24 h … hour(t) + 24 h.
-- An outcome is placed by its start and its end, a push status by the
-- request's creation and its update (both feed channel_events); a link by
-- linked_at — its attempt's start, or the /otps/track registration's time,
-- sent with the OTP — since a link re-keys the journeys of the attempts
-- around it.

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_dirty_silent_mv"}} {{onCluster}}
TO {{table "rollup_dirty"}} AS
SELECT toDateTime(h + 3600 * k, 'UTC') AS hour, now64(3) AS inserted_at
FROM (SELECT DISTINCT arrayJoin([intDiv(toUnixTimestamp64Milli(started_at), 3600000), intDiv(toUnixTimestamp64Milli(finished_at), 3600000)]) * 3600 AS h
      FROM {{table "silent_auth_outcomes"}})
ARRAY JOIN range(-24, 25) AS k;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_dirty_push_mv"}} {{onCluster}}
TO {{table "rollup_dirty"}} AS
SELECT toDateTime(h + 3600 * k, 'UTC') AS hour, now64(3) AS inserted_at
FROM (SELECT DISTINCT arrayJoin([intDiv(toUnixTimestamp64Milli(created_at), 3600000), intDiv(toUnixTimestamp64Milli(updated_at), 3600000)]) * 3600 AS h
      FROM {{table "push_events"}})
ARRAY JOIN range(-24, 25) AS k;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_dirty_links_mv"}} {{onCluster}}
TO {{table "rollup_dirty"}} AS
SELECT toDateTime(h + 3600 * k, 'UTC') AS hour, now64(3) AS inserted_at
FROM (SELECT DISTINCT intDiv(toUnixTimestamp64Milli(linked_at), 3600000) * 3600 AS h FROM {{table "journey_links"}})
ARRAY JOIN range(-24, 25) AS k;

-- What 0010's tables stored before these views existed is dirty too
-- (through the plain, on a cluster Distributed, tables, as in 0008).
INSERT INTO rollup_dirty SETTINGS distributed_foreground_insert = 1
SELECT toDateTime(h + 3600 * k, 'UTC'), now64(3)
FROM (SELECT DISTINCT arrayJoin([intDiv(toUnixTimestamp64Milli(started_at), 3600000), intDiv(toUnixTimestamp64Milli(finished_at), 3600000)]) * 3600 AS h FROM silent_auth_outcomes
      UNION DISTINCT
      SELECT DISTINCT arrayJoin([intDiv(toUnixTimestamp64Milli(created_at), 3600000), intDiv(toUnixTimestamp64Milli(updated_at), 3600000)]) * 3600 FROM push_events
      UNION DISTINCT
      SELECT DISTINCT intDiv(toUnixTimestamp64Milli(linked_at), 3600000) * 3600 FROM journey_links)
ARRAY JOIN range(-24, 25) AS k;
