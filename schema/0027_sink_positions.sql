-- How far the sink has stored each stream: every message of the stream
-- (stream, created_at: a stream created anew under the same name is
-- another) up to acked_seq is stored, or needed no row. The sink records
-- its consumer's acknowledgement floor every half minute; when its
-- durable consumer is gone (deleted by hand, a replicated consumer lost)
-- it creates it again from the message after, not from the stream's
-- first, which would insert every event the stream holds again. Versioned
-- by acked_seq, so the furthest position is the one kept.
CREATE TABLE IF NOT EXISTS {{table "sink_positions"}} {{onCluster}}
(
    consumer    String,
    stream      String,
    created_at  DateTime64(3, 'UTC'),
    acked_seq   UInt64,
    recorded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "sink_positions" "ReplacingMergeTree(acked_seq)"}}
ORDER BY (consumer, stream, created_at);

{{distributed "sink_positions" "rand()"}}
