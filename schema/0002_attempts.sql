-- Attempts: one OTP on one channel, maintained incrementally from
-- delivery_events by a materialized view, so that analytics read one row per
-- attempt instead of every event.
--
-- Every column is an idempotent aggregate (min, max): a delivery fact inserted
-- twice (a redelivered batch, a tyntec retry, the poller re-reading it)
-- changes nothing, and facts arriving out of order are placed by their own
-- event_time, never by arrival. Rows of one attempt written by different
-- inserts collapse on merge; until then queries GROUP BY (otp_id, channel) and
-- merge them with the same functions.
--
-- day is the day of the row's earliest event. An attempt belongs to a time
-- window by its earliest event, so a query for [from, to) reads the days
-- [from - 1 day, to + 1 day] (the primary key prunes the rest) and keeps the
-- attempts whose merged first_at falls in the window: exact while an
-- attempt's events span less than a day (tyntec's channel timeouts are
-- minutes).
CREATE TABLE IF NOT EXISTS {{table "attempts"}} {{onCluster}}
(
    day           Date,
    otp_id        UUID,
    channel       LowCardinality(String),
    profile_id    SimpleAggregateFunction(max, String),
    first_at      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_at       SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    dispatched_at SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    delivered_at  SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    failed_at     SimpleAggregateFunction(min, Nullable(DateTime64(3, 'UTC'))),
    -- error_code of the attempt's failures (the greatest, when several differ).
    error_code    SimpleAggregateFunction(max, String),
    -- unknown: some event had a status tyntec did not document.
    unknown       SimpleAggregateFunction(max, UInt8),
    -- polled: some event was learned by polling a missed webhook.
    polled        SimpleAggregateFunction(max, UInt8)
)
ENGINE = {{engine "attempts" "AggregatingMergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, otp_id, channel);

{{distributed "attempts" "cityHash64(otp_id)"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "attempts_mv"}} {{onCluster}}
TO {{table "attempts"}} AS
SELECT
    toDate(min(event_time))                                                AS day,
    otp_id,
    channel,
    max(toString(profile_id))                                              AS profile_id,
    min(event_time)                                                        AS first_at,
    max(event_time)                                                        AS last_at,
    minOrNullIf(event_time, status = 'DISPATCHED')                         AS dispatched_at,
    minOrNullIf(event_time, status = 'DELIVERED')                          AS delivered_at,
    minOrNullIf(event_time, status IN ('UNDELIVERABLE', 'TIMED_OUT'))      AS failed_at,
    maxIf(toString(error_code), status IN ('UNDELIVERABLE', 'TIMED_OUT'))  AS error_code,
    max(toUInt8(unknown_status))                                           AS unknown,
    max(toUInt8(source = 'poll'))                                          AS polled
FROM {{table "delivery_events"}}
GROUP BY otp_id, channel;

-- Backfill what was stored before the view existed. Running it next to live
-- inserts is harmless: every column is idempotent.
INSERT INTO {{table "attempts"}}
SELECT
    toDate(min(event_time)), otp_id, channel, max(toString(profile_id)),
    min(event_time), max(event_time),
    minOrNullIf(event_time, status = 'DISPATCHED'),
    minOrNullIf(event_time, status = 'DELIVERED'),
    minOrNullIf(event_time, status IN ('UNDELIVERABLE', 'TIMED_OUT')),
    maxIf(toString(error_code), status IN ('UNDELIVERABLE', 'TIMED_OUT')),
    max(toUInt8(unknown_status)),
    max(toUInt8(source = 'poll'))
FROM {{table "delivery_events"}}
GROUP BY otp_id, channel;
