-- Replays of dead letters: one row per dead letter put back through the
-- normal path (`otpscope deadletters replay`, POST /api/v1/deadletters/replay),
-- so that replaying all of them twice replays each one once. A row records
-- the first replay; repeats collapse on (source, event_id).
CREATE TABLE IF NOT EXISTS {{table "dead_letter_replays"}} {{onCluster}}
(
    event_id    String,
    source      LowCardinality(String),
    replayed_at DateTime64(3, 'UTC'),
    messages    UInt32,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "dead_letter_replays" "ReplacingMergeTree(inserted_at)"}}
ORDER BY (source, event_id)
TTL toDateTime(replayed_at) + INTERVAL 90 DAY;

{{distributed "dead_letter_replays" "rand()"}}
