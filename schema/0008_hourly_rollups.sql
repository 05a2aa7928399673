-- Hourly rollups, maintained incrementally: any window, aligned or not, reads
-- whole hours from aggregates and its two partial hours from the attempts and
-- journeys stored for them, so its cost no longer depends on how long it is,
-- how much history there is, or where its edges fall (docs/analytics.md,
-- "How it is computed"). They replace the daily rollups of 0003 and 0005
-- (left in place, no longer read).
--
-- An hour's rows are the output of the live queries for the window
-- [hour, hour + 1 h) (internal/store: attemptsSQL, journeysSQL; one SQL for
-- both uses), keyed by the attempt's first fact and the journey's first
-- attempt. Every computation of an hour writes its rows under a new version,
-- then records (hour, version) in rolled_hours; readers take each hour's
-- greatest recorded version, so an hour is replaced atomically and a
-- half-written one is never read. The job deletes replaced versions on its
-- next run.
--
-- Which hours to compute: every insert marks the hours it can change in
-- rollup_dirty, through one materialized view per input table. A fact at time
-- t is read by the window of hour H when H − 1 day ≤ t < H + 1 h + 1 day (the
-- live queries read [from − MaxAttemptSpan, to + MaxAttemptSpan), span 1 day),
-- i.e. H in [hour(t) − 24 h, hour(t) + 24 h]: 49 hours. An hour is dirty when
-- a mark is newer than its version (less RollupSlack); the job recomputes the
-- dirty hours only, so its work follows the data that arrived, and an
-- old-dated event costs its 49 hours. An hour never marked never had a fact
-- within a day of it: it is empty, and readers skip it.

CREATE TABLE IF NOT EXISTS {{table "rollup_dirty"}} {{onCluster}}
(
    hour        DateTime('UTC'),
    inserted_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rollup_dirty" "ReplacingMergeTree(inserted_at)"}}
ORDER BY hour;

{{distributed "rollup_dirty" "cityHash64(hour)"}}

-- A new input table (another channel's raw facts) adds one view like these,
-- over the column that places its facts in time.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_dirty_delivery_mv"}} {{onCluster}}
TO {{table "rollup_dirty"}} AS
SELECT toDateTime(h + 3600 * k, 'UTC') AS hour, now64(3) AS inserted_at
FROM (SELECT DISTINCT intDiv(toUnixTimestamp64Milli(event_time), 3600000) * 3600 AS h FROM {{table "delivery_events"}})
ARRAY JOIN range(-24, 25) AS k;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "rollup_dirty_status_mv"}} {{onCluster}}
TO {{table "rollup_dirty"}} AS
SELECT toDateTime(h + 3600 * k, 'UTC') AS hour, now64(3) AS inserted_at
FROM (SELECT DISTINCT intDiv(toUnixTimestamp64Milli(observed_at), 3600000) * 3600 AS h FROM {{table "otp_status"}})
ARRAY JOIN range(-24, 25) AS k;

-- What was stored before the views existed is dirty too. Through the plain
-- (on a cluster: Distributed) tables, so that every shard's facts are marked
-- however many shards there are.
INSERT INTO rollup_dirty SETTINGS distributed_foreground_insert = 1
SELECT toDateTime(h + 3600 * k, 'UTC'), now64(3)
FROM (SELECT DISTINCT intDiv(toUnixTimestamp64Milli(event_time), 3600000) * 3600 AS h FROM delivery_events
      UNION DISTINCT
      SELECT DISTINCT intDiv(toUnixTimestamp64Milli(observed_at), 3600000) * 3600 FROM otp_status)
ARRAY JOIN range(-24, 25) AS k;

-- Every computation of an hour, under its version (plain MergeTree: the job
-- finds replaced versions here and deletes them with their rows).
CREATE TABLE IF NOT EXISTS {{table "rolled_hours"}} {{onCluster}}
(
    hour        DateTime('UTC'),
    version     UInt64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = {{engine "rolled_hours" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version);

{{distributed "rolled_hours" "cityHash64(hour)"}}

-- One row per attempt, in the hour of its first fact: the partial hours of a
-- window are read from here (by a_first), with the same SQL as live attempts.
CREATE TABLE IF NOT EXISTS {{table "hour_attempts"}} {{onCluster}}
(
    hour          DateTime('UTC'),
    version       UInt64,
    otp_id        UUID,
    channel       LowCardinality(String),
    a_no          UInt32,
    a_profile     LowCardinality(String),
    a_first       DateTime64(3, 'UTC'),
    a_dispatched  Nullable(DateTime64(3, 'UTC')),
    a_delivered   Nullable(DateTime64(3, 'UTC')),
    a_failed      Nullable(DateTime64(3, 'UTC')),
    a_fail_status LowCardinality(String),
    a_err         LowCardinality(String),
    a_unknown     UInt8,
    a_polled      UInt8
)
ENGINE = {{engine "hour_attempts" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, a_first);

{{distributed "hour_attempts" "cityHash64(otp_id)"}}

-- One row per journey, in the hour of its first attempt, with its polled
-- final status (s_*) for the verification conversion.
CREATE TABLE IF NOT EXISTS {{table "hour_journeys"}} {{onCluster}}
(
    hour                DateTime('UTC'),
    version             UInt64,
    otp_id              UUID,
    j_profile           LowCardinality(String),
    j_first             DateTime64(3, 'UTC'),
    j_delivered         Nullable(DateTime64(3, 'UTC')),
    j_delivered_channel LowCardinality(String),
    j_primary           LowCardinality(String),
    path                LowCardinality(String),
    n                   UInt64,
    resends             UInt64,
    outcome             LowCardinality(String),
    s_final             UInt8,
    s_verified          UInt8,
    s_rate              Float64
)
ENGINE = {{engine "hour_journeys" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, j_first);

{{distributed "hour_journeys" "cityHash64(otp_id)"}}

-- The whole hours: the same columns as the daily tables of 0005, per hour.
CREATE TABLE IF NOT EXISTS {{table "hourly_attempts"}} {{onCluster}}
(
    hour          DateTime('UTC'),
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
ENGINE = {{engine "hourly_attempts" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, profile_id, channel, code);

{{distributed "hourly_attempts" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "hourly_paths"}} {{onCluster}}
(
    hour            DateTime('UTC'),
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
ENGINE = {{engine "hourly_paths" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, profile_id, path);

{{distributed "hourly_paths" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "hourly_conversion"}} {{onCluster}}
(
    hour        DateTime('UTC'),
    version     UInt64,
    profile_id  String,
    channel     String,
    polled      UInt64,
    verified    UInt64,
    sample_rate Float64
)
ENGINE = {{engine "hourly_conversion" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, profile_id, channel);

{{distributed "hourly_conversion" "cityHash64(hour)"}}

-- Exact histograms: how many attempts (metric 'latency', key = channel) or
-- journeys (metric 'ttd', key = primary channel) took each millisecond value;
-- bucket groups values by 256 ms so that a percentile reads one bucket's
-- values (hourly_latency is sorted by bucket first for that read).
CREATE TABLE IF NOT EXISTS {{table "hourly_latency"}} {{onCluster}}
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
ENGINE = {{engine "hourly_latency" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (metric, key, bucket, hour, version, profile_id, ms);

{{distributed "hourly_latency" "cityHash64(hour)"}}

CREATE TABLE IF NOT EXISTS {{table "hourly_latency_buckets"}} {{onCluster}}
(
    hour       DateTime('UTC'),
    version    UInt64,
    metric     LowCardinality(String),
    key        String,
    profile_id String,
    bucket     Int64,
    n          UInt64
)
ENGINE = {{engine "hourly_latency_buckets" "MergeTree"}}
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, version, metric, key, profile_id, bucket);

{{distributed "hourly_latency_buckets" "cityHash64(hour)"}}
