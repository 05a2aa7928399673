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
-- status, resends per path, the earliest pending attempt (completeness).
-- New tables replace rollup_days, daily_channels and daily_journeys (left
-- in place, no longer read), so every day is rolled up again under the new
-- definition and readers compute it live until then; daily_conversion and
-- daily_latency* keep their shape, and a day's rows there are read only at
-- a version recorded in rolled_days.
CREATE TABLE IF NOT EXISTS {{table "rolled_days"}} {{onCluster}}
(
    day         Date,
    version     UInt64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rolled_days" "ReplacingMergeTree(version)"}}
ORDER BY day;

{{distributed "rolled_days" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_attempts"}} {{onCluster}}
(
    day           Date,
    version       UInt64,
    profile_id    String,
    channel       String,
    code          String,
    attempts      UInt64,
    delivered     UInt64,
    failed        UInt64,
    undeliverable UInt64,
    timed_out     UInt64,
    unknown       UInt64,
    polled        UInt64,
    lat_n         UInt64,
    pending_first Nullable(DateTime64(3, 'UTC'))
)
ENGINE = {{engine "daily_attempts" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, profile_id, channel, code);

{{distributed "daily_attempts" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_paths"}} {{onCluster}}
(
    day             Date,
    version         UInt64,
    profile_id      String,
    path            String,
    primary_channel String,
    otps            UInt64,
    fallback        UInt64,
    resends         UInt64,
    o_primary       UInt64,
    o_fallback      UInt64,
    o_failed        UInt64,
    o_pending       UInt64,
    delivered       UInt64
)
ENGINE = {{engine "daily_paths" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, profile_id, path);

{{distributed "daily_paths" "toUInt64(day)"}}
