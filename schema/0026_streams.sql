-- The stream the sink inserts from, known by when JetStream created it:
-- the sink records it as it starts, so a backup holds the stream its
-- position (backups.stream_seq) is in. After a restore the sink inserts
-- the stream again from that position only in that stream; another one (a
-- rebuilt machine's, a stream created anew) from its first message.
CREATE TABLE IF NOT EXISTS {{table "streams"}} {{onCluster}}
(
    name        String,
    created_at  DateTime64(3, 'UTC'),
    seen_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "streams" "ReplacingMergeTree(seen_at)"}}
ORDER BY (name, created_at);

{{distributed "streams" "rand()"}}
