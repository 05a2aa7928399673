-- Day-level exact histograms: the sums of a day's hourly_latency and
-- hourly_latency_buckets rows (named day_*: the daily_* of 0003 are the
-- unused daily rollups), so that a percentile over whole days reads a
-- row per day, value and profile instead of one per hour (at 100 M events
-- over 90 days the hourly per-millisecond values a 90-day percentile read
-- were most of its cost).
--
-- `hour` holds the day's first hour, so readers select from either level
-- with the same columns. A day's rows are computed by the rollup job after
-- the day's hours, from the hours' versions at that moment, and recorded in
-- rolled_day_histograms with the list of those (hour, version) pairs;
-- readers use a day only when its whole 24 hours are read from the hourly
-- aggregates at exactly those versions, and read its hours otherwise.
-- Replaced day versions are deleted like replaced hours.
CREATE TABLE IF NOT EXISTS {{table "day_latency"}} {{onCluster}}
(
    metric     LowCardinality(String),
    key        String,
    bucket     Int64,
    hour       DateTime('UTC'),
    version    UInt64,
    profile_id String,
    ms         Int64,
    n          UInt64
)
ENGINE = {{engine "day_latency" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (metric, key, bucket, hour, version, profile_id, ms);

{{distributed "day_latency" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "day_latency_buckets"}} {{onCluster}}
(
    hour       DateTime('UTC'),
    version    UInt64,
    metric     LowCardinality(String),
    key        String,
    profile_id String,
    bucket     Int64,
    n          UInt64
)
ENGINE = {{engine "day_latency_buckets" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, metric, key, profile_id, bucket);

{{distributed "day_latency_buckets" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "rolled_day_histograms"}} {{onCluster}}
(
    hour        DateTime('UTC'),
    version     UInt64,
    hours       Array(Tuple(DateTime('UTC'), UInt64)),
    computed_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rolled_day_histograms" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version);

{{distributed "rolled_day_histograms" "cityHash64(hour)"}}
