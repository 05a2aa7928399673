-- The DELIVERED facts of channel_events, one row each, in a narrow table
-- of small granules, for what asks a few OTPs' deliveries: a resend
-- decision's outcome (internal/store, resends.go; docs/analytics.md,
-- "Resends"). channel_events keeps every fact of a (day, OTP, channel) in
-- one wide row, sorted by day then OTP, so the OTPs of a few hundred
-- recent decisions, scattered over the day, hit most of its granules, and
-- each granule's every row is read for its sets of facts.
--
-- Fed from channel_events' own inserts (the blocks its three views write:
-- delivery events, silent authentication, push), so a row has the day of
-- the channel_events row its fact arrived in, and a read of these rows
-- answers what one of channel_events' DELIVERED facts answers. A fact
-- stored again (a redelivery) is a duplicate row until a merge collapses
-- it; readers take the facts as a set.
--
-- Under --retention-attempts, by day, like channel_events.
CREATE TABLE IF NOT EXISTS {{table "channel_deliveries"}} {{onCluster}}
(
    day          Date,
    otp_id       UUID,
    channel      LowCardinality(String),
    delivered_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "channel_deliveries" "ReplacingMergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, otp_id, channel, delivered_at)
SETTINGS index_granularity = 256;

{{distributed "channel_deliveries" "cityHash64(otp_id)"}}

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "channel_deliveries_mv"}} {{onCluster}}
TO {{table "channel_deliveries"}} AS
SELECT day, otp_id, toString(channel) AS channel, e.1 AS delivered_at
FROM {{table "channel_events"}} ARRAY JOIN events AS e
WHERE e.3 = 'DELIVERED';

-- What channel_events held before the view existed. Through the plain (on
-- a cluster: Distributed) tables, sharded like channel_events, so that
-- every shard's facts are copied however many shards there are.
INSERT INTO channel_deliveries SETTINGS distributed_foreground_insert = 1
SELECT day, otp_id, toString(channel), e.1
FROM channel_events ARRAY JOIN events AS e
WHERE e.3 = 'DELIVERED';
