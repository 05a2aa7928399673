-- Raw tables: one row per fact, exactly as it arrived on NATS.
--
-- Every table is a ReplacingMergeTree whose sorting key ends in event_id, the
-- content-derived message id (Nats-Msg-Id): a fact inserted twice (a redelivered
-- batch, a tyntec retry outside JetStream's duplicate window, the poller
-- re-reading it) collapses into one row on merge, and queries that must be exact
-- before the merge read with FINAL or count distinct event_id. The columns before
-- event_id are functions of it, so the key deduplicates by event_id alone.
-- Monthly partitions on the event's own time keep time-range queries to the
-- months they touch; the minmax index skips granules within a month.

CREATE TABLE IF NOT EXISTS {{table "delivery_events"}} {{onCluster}}
(
    event_id               String,
    otp_id                 UUID,
    profile_id             LowCardinality(String),
    channel                LowCardinality(String),
    status                 LowCardinality(String),
    event_time             DateTime64(3, 'UTC'),
    received_at            DateTime64(3, 'UTC'),
    error_code             LowCardinality(String),
    error_message          String,
    source                 LowCardinality(String),
    timestamp_from_receipt Bool,
    unknown_channel        Bool,
    unknown_status         Bool,
    missed_webhook         Bool,
    stream_seq             UInt64,
    inserted_at            DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_time_idx event_time TYPE minmax GRANULARITY 4
)
ENGINE = {{engine "delivery_events" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(event_time)
ORDER BY (otp_id, channel, status, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "delivery_events" "cityHash64(otp_id)"}}

CREATE TABLE IF NOT EXISTS {{table "otp_status"}} {{onCluster}}
(
    event_id      String,
    otp_id        UUID,
    api           LowCardinality(String),
    otp_status    LowCardinality(String),
    profile_id    LowCardinality(String),
    attempt_count UInt16,
    otp_created   Nullable(DateTime64(3, 'UTC')),
    otp_expire    Nullable(DateTime64(3, 'UTC')),
    observed_at   DateTime64(3, 'UTC'),
    source        LowCardinality(String),
    sample_rate   Float64,
    stream_seq    UInt64,
    inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX observed_at_idx observed_at TYPE minmax GRANULARITY 4
)
ENGINE = {{engine "otp_status" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(observed_at)
ORDER BY (otp_id, otp_status, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "otp_status" "cityHash64(otp_id)"}}

CREATE TABLE IF NOT EXISTS {{table "v1_events"}} {{onCluster}}
(
    event_id    String,
    otp_id      UUID,
    type        LowCardinality(String),
    status      LowCardinality(String),
    status_text String,
    created     DateTime64(3, 'UTC'),
    observed_at DateTime64(3, 'UTC'),
    stream_seq  UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "v1_events" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(created)
ORDER BY (otp_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "v1_events" "cityHash64(otp_id)"}}

CREATE TABLE IF NOT EXISTS {{table "resends"}} {{onCluster}}
(
    event_id        String,
    otp_id          UUID,
    profile_id      LowCardinality(String),
    decision_id     String,
    result          LowCardinality(String),
    reason          String,
    via             LowCardinality(String),
    trigger_channel LowCardinality(String),
    trigger_status  LowCardinality(String),
    attempt         UInt16,
    dry_run         Bool,
    decided_at      DateTime64(3, 'UTC'),
    stream_seq      UInt64,
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "resends" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(decided_at)
ORDER BY (otp_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "resends" "cityHash64(otp_id)"}}

CREATE TABLE IF NOT EXISTS {{table "dead_letters"}} {{onCluster}}
(
    event_id     String,
    reason       String,
    field        LowCardinality(String),
    http_status  UInt16,
    source       LowCardinality(String),
    received_at  DateTime64(3, 'UTC'),
    remote_addr  String,
    content_type String,
    body         String,
    body_bytes   UInt32,
    truncated    Bool,
    stream_seq   UInt64,
    inserted_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "dead_letters" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(received_at)
ORDER BY (source, event_id)
TTL toDateTime(received_at) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "dead_letters" "rand()"}}
