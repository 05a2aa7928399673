-- Daily rollups: the analytics figures of whole UTC days, precomputed so that
-- a long window reads a few rows per day instead of every attempt.
--
-- A rollup of day D holds exactly what the live queries compute for the
-- window [D, D + 1 day) (internal/sink/rollup.go: one SQL definition for
-- both), split by profile so the API's profile filter still applies:
--   daily_channels    attempts per (profile, channel, error code of failures)
--   daily_journeys    journeys per (profile, path), with their outcomes
--   daily_conversion  verification conversion per (profile, delivering channel)
--   daily_latency     exact histograms: how many attempts (metric 'latency',
--                     key = channel) or journeys (metric 'ttd', key = primary
--                     channel) took each millisecond value; bucket groups
--                     values by 256 ms so a percentile reads one bucket's values
--   daily_latency_buckets  the same histograms summed per bucket
-- Every computation of a day writes its rows under a new version and then
-- records (day, version) in rollup_days; readers take each day's greatest
-- recorded version, so a recomputation replaces a day atomically and a
-- half-written one is never read. Superseded versions are deleted by the job.
--
-- The reporter's rollup job computes a day once it is sealed (ended at least
-- two days ago: an attempt's events span less than a day, late webhooks and
-- polls arrive within minutes) and recomputes it whenever rows inserted after
-- its computation touch it (a replayed backlog, a late event). Readers also
-- check for such rows themselves and compute a touched day live.

CREATE TABLE IF NOT EXISTS {{table "rollup_days"}} {{onCluster}}
(
    day         Date,
    version     UInt64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rollup_days" "ReplacingMergeTree(version)"}}
ORDER BY day;

{{distributed "rollup_days" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_channels"}} {{onCluster}}
(
    day        Date,
    version    UInt64,
    profile_id String,
    channel    String,
    code       String,
    attempts   UInt64,
    delivered  UInt64,
    failed     UInt64,
    unknown    UInt64,
    polled     UInt64,
    lat_n      UInt64
)
ENGINE = {{engine "daily_channels" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, profile_id, channel, code);

{{distributed "daily_channels" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_journeys"}} {{onCluster}}
(
    day         Date,
    version     UInt64,
    profile_id  String,
    path        String,
    primary_channel String,
    otps        UInt64,
    fallback    UInt64,
    o_primary   UInt64,
    o_fallback  UInt64,
    o_failed    UInt64,
    o_pending   UInt64,
    delivered   UInt64
)
ENGINE = {{engine "daily_journeys" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, profile_id, path);

{{distributed "daily_journeys" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_conversion"}} {{onCluster}}
(
    day         Date,
    version     UInt64,
    profile_id  String,
    channel     String,
    polled      UInt64,
    verified    UInt64,
    sample_rate Float64
)
ENGINE = {{engine "daily_conversion" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, profile_id, channel);

{{distributed "daily_conversion" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_latency"}} {{onCluster}}
(
    metric     LowCardinality(String),
    key        String,
    bucket     Int64,
    day        Date,
    version    UInt64,
    profile_id String,
    ms         Int64,
    n          UInt64
)
ENGINE = {{engine "daily_latency" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (metric, key, bucket, day, version, profile_id, ms);

{{distributed "daily_latency" "toUInt64(day)"}}

CREATE TABLE IF NOT EXISTS {{table "daily_latency_buckets"}} {{onCluster}}
(
    day        Date,
    version    UInt64,
    metric     LowCardinality(String),
    key        String,
    profile_id String,
    bucket     Int64,
    n          UInt64
)
ENGINE = {{engine "daily_latency_buckets" "MergeTree"}}
PARTITION BY toYYYYMM(day)
ORDER BY (day, version, metric, key, profile_id, bucket);

{{distributed "daily_latency_buckets" "toUInt64(day)"}}

-- Rows inserted after a day's computation are found by inserted_at; the
-- index lets that look-up skip the granules of older inserts.
ALTER TABLE {{table "delivery_events"}} {{onCluster}} ADD INDEX IF NOT EXISTS inserted_at_idx inserted_at TYPE minmax GRANULARITY 1;

ALTER TABLE {{table "delivery_events"}} {{onCluster}} MATERIALIZE INDEX inserted_at_idx;

ALTER TABLE {{table "otp_status"}} {{onCluster}} ADD INDEX IF NOT EXISTS inserted_at_idx inserted_at TYPE minmax GRANULARITY 1;

ALTER TABLE {{table "otp_status"}} {{onCluster}} MATERIALIZE INDEX inserted_at_idx;
