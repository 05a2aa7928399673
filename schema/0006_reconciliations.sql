-- What the poller concluded about attempts whose outcome no webhook reported
-- and that it could not recover (tyntec.2fa.reconcile.<RESULT>): where
-- tyntec's v1 API does not serve v4 OTPs, a lost v4 webhook is counted as
-- `unrecoverable`, never invented. `since` is the attempt's dispatch (its
-- last known fact), which places it in a window; `channel` is empty when an
-- attempt on an unknown channel may be missing.
CREATE TABLE IF NOT EXISTS {{table "reconciliations"}} {{onCluster}}
(
    event_id      String,
    otp_id        UUID,
    api           LowCardinality(String),
    profile_id    LowCardinality(String),
    result        LowCardinality(String),
    channel       LowCardinality(String),
    since         DateTime64(3, 'UTC'),
    reason        String,
    otp_status    LowCardinality(String),
    attempt_count UInt16,
    observed_at   DateTime64(3, 'UTC'),
    stream_seq    UInt64,
    inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "reconciliations" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(since)
ORDER BY (otp_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "reconciliations" "cityHash64(otp_id)"}}
