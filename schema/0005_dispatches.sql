-- Dispatches: an attempt is one dispatch of an OTP on a channel, not one
-- (otp_id, channel). SMS UNDELIVERABLE → resend → SMS DELIVERED is two SMS
-- attempts, one failed and one delivered.
--
-- Splitting a channel's events into dispatches depends on their order, which
-- min/max cannot express. channel_events keeps, per (day, otp_id, channel),
-- the set of distinct facts (groupUniqArrayArray: a union of sets, so
-- duplicates and arrival order change nothing); readers union the sets of
-- [from − 1 day, to + 1 day], sort them by (event_time, status rank) and split
-- them at each DISPATCHED that follows a settled status (internal/store,
-- dispatchSplitSQL; docs/analytics.md, "Attempt"). day is the day of the
-- row's earliest event, as in attempts.
--
-- Tuple: (event_time, rank, status, error_code, unknown_status, polled) with
-- rank 0 for DISPATCHED, 2 for DELIVERED / UNDELIVERABLE / TIMED_OUT and 1 for
-- any other status, so that at equal times a DISPATCHED sorts first.
CREATE TABLE IF NOT EXISTS {{table "channel_events"}} {{onCluster}}
(
    day        Date,
    otp_id     UUID,
    channel    LowCardinality(String),
    profile_id SimpleAggregateFunction(max, String),
    first_at   SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    events     SimpleAggregateFunction(groupUniqArrayArray, Array(Tuple(DateTime64(3, 'UTC'), UInt8, String, String, UInt8, UInt8)))
)
ENGINE = {{engine "channel_events" "AggregatingMergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, otp_id, channel);

{{distributed "channel_events" "cityHash64(otp_id)"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "channel_events_mv"}} {{onCluster}}
TO {{table "channel_events"}} AS
SELECT
    toDate(min(event_time)) AS day,
    otp_id,
    channel,
    max(toString(profile_id)) AS profile_id,
    min(event_time) AS first_at,
    groupUniqArray((event_time,
        toUInt8(multiIf(status = 'DISPATCHED', 0, status IN ('DELIVERED', 'UNDELIVERABLE', 'TIMED_OUT'), 2, 1)),
        toString(status), toString(error_code), toUInt8(unknown_status), toUInt8(source = 'poll'))) AS events
FROM {{table "delivery_events"}}
GROUP BY otp_id, channel;

-- Backfill what was stored before the view existed; harmless next to live
-- inserts (a union of sets).
INSERT INTO {{table "channel_events"}}
SELECT
    toDate(min(event_time)), otp_id, channel, max(toString(profile_id)), min(event_time),
    groupUniqArray((event_time,
        toUInt8(multiIf(status = 'DISPATCHED', 0, status IN ('DELIVERED', 'UNDELIVERABLE', 'TIMED_OUT'), 2, 1)),
        toString(status), toString(error_code), toUInt8(unknown_status), toUInt8(source = 'poll')))
FROM {{table "delivery_events"}}
GROUP BY otp_id, channel;

-- The rollups count dispatches now, and more of them: failures split by
-- status, resends per path, and the earliest pending attempt (completeness).
-- Days rolled up under the old definition are forgotten: readers compute
-- them live until the job has rolled them up again (it rolls up every day
-- without a recorded version, and deletes the old rows as replaced).
ALTER TABLE {{table "daily_channels"}} {{onCluster}} ADD COLUMN IF NOT EXISTS undeliverable UInt64 DEFAULT 0, ADD COLUMN IF NOT EXISTS timed_out UInt64 DEFAULT 0, ADD COLUMN IF NOT EXISTS pending_first Nullable(DateTime64(3, 'UTC'));

ALTER TABLE {{table "daily_journeys"}} {{onCluster}} ADD COLUMN IF NOT EXISTS resends UInt64 DEFAULT 0;
{{if .Cluster}}
ALTER TABLE daily_channels {{onCluster}} ADD COLUMN IF NOT EXISTS undeliverable UInt64 DEFAULT 0, ADD COLUMN IF NOT EXISTS timed_out UInt64 DEFAULT 0, ADD COLUMN IF NOT EXISTS pending_first Nullable(DateTime64(3, 'UTC'));

ALTER TABLE daily_journeys {{onCluster}} ADD COLUMN IF NOT EXISTS resends UInt64 DEFAULT 0;
{{end}}
TRUNCATE TABLE IF EXISTS {{table "rollup_days"}} {{onCluster}};
