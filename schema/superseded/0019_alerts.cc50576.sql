-- Alerts the reporter's rules fired (tyntec.2fa.alert.<RULE>), for the API
-- and the console: one row per alert, `evaluated_at` being the end of the
-- window it was evaluated over. An alert published twice has one id and
-- collapses on it. Kept as long as the events (--retention-events).
CREATE TABLE IF NOT EXISTS {{table "alerts"}} {{onCluster}}
(
    event_id     String,
    rule         LowCardinality(String),
    channel      LowCardinality(String),
    window_from  DateTime64(3, 'UTC'),
    evaluated_at DateTime64(3, 'UTC'),
    value        Float64,
    threshold    Float64,
    volume       UInt64,
    summary      String,
    stream_seq   UInt64,
    inserted_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "alerts" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (evaluated_at, rule, channel, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "alerts" "rand()"}}
