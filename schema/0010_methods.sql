-- Verification methods besides the OTP (issue 14): silent-auth outcomes the
-- app reports (tyntec.2fa.silent.<RESULT>) and push approval statuses
-- (tyntec.2fa.push.<STATUS>). Numbered 0010 to leave 0008 and 0009 to the
-- rollup rework written at the same time.
--
-- Raw tables as in 0001: ReplacingMergeTree collapsing a fact stored twice by
-- event_id (attemptId + result, uuid + status). attempt_uuid is
-- events.AttemptUUID: the attempt's id where channel_events needs an otp_id
-- (a push request's uuid itself when it is a UUID). Only keyed hashes of the
-- phone number (loginHint) and mobileId are ever stored.
CREATE TABLE IF NOT EXISTS {{table "silent_auth_outcomes"}} {{onCluster}}
(
    event_id        String,
    attempt_id      String,
    attempt_uuid    UUID,
    correlation_id  String,
    profile_id      LowCardinality(String),
    scope           LowCardinality(String),
    started_at      DateTime64(3, 'UTC'),
    finished_at     DateTime64(3, 'UTC'),
    result          LowCardinality(String),
    error           LowCardinality(String),
    login_hint_hash String,
    mobile_id_hash  String,
    unknown_result  Bool,
    unknown_error   Bool,
    received_at     DateTime64(3, 'UTC'),
    stream_seq      UInt64,
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX started_at_idx started_at TYPE minmax GRANULARITY 4
)
ENGINE = {{engine "silent_auth_outcomes" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(started_at)
ORDER BY (attempt_uuid, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "silent_auth_outcomes" "cityHash64(attempt_uuid)"}}

CREATE TABLE IF NOT EXISTS {{table "push_events"}} {{onCluster}}
(
    event_id          String,
    uuid              String,
    attempt_uuid      UUID,
    correlation_id    String,
    status            LowCardinality(String),
    created_at        DateTime64(3, 'UTC'),
    updated_at        DateTime64(3, 'UTC'),
    seconds_to_expire UInt32,
    unknown_status    Bool,
    source            LowCardinality(String),
    received_at       DateTime64(3, 'UTC'),
    stream_seq        UInt64,
    inserted_at       DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX created_at_idx created_at TYPE minmax GRANULARITY 4
)
ENGINE = {{engine "push_events" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(created_at)
ORDER BY (attempt_uuid, status, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "push_events" "cityHash64(attempt_uuid)"}}

-- Journeys across methods: which journey (the login's correlationId) an OTP
-- or a method attempt belongs to. Fed by the views below (every method
-- attempt: its correlationId, its own id when the app sent none) and by the
-- sink for /otps/track registrations that carry a correlationId. Facts
-- without a link are a journey of their own (the OTP). A key given twice
-- with different journeys takes the first link (analytics.md).
CREATE TABLE IF NOT EXISTS {{table "journey_links"}} {{onCluster}}
(
    otp_id      UUID,
    journey_id  String,
    source      LowCardinality(String),
    linked_at   DateTime64(3, 'UTC'),
    event_id    String,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {{engine "journey_links" "ReplacingMergeTree(inserted_at)"}}
PARTITION BY toYYYYMM(linked_at)
ORDER BY (otp_id, journey_id)
SETTINGS non_replicated_deduplication_window = 1000;

{{distributed "journey_links" "cityHash64(otp_id)"}}

-- The methods as channels of channel_events (0005), so every figure counts
-- them as it counts an OTP channel. An attempt's facts: a DISPATCHED at its
-- start, and a settling fact at its end — verified / approved → DELIVERED;
-- not_verified, error, denied → UNDELIVERABLE with error_code the error (or
-- the result / status); expired → TIMED_OUT with error_code 'expired'. A
-- result or status otpscope does not know is a fact of its own (upper-cased,
-- rank 1, unknown = 1): the attempt stays pending, as with an undocumented
-- tyntec status. A pending push has only its DISPATCHED. The raw tables keep
-- the original result and status.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "channel_events_silent_mv"}} {{onCluster}}
TO {{table "channel_events"}} AS
WITH
    multiIf(result = 'verified', 'DELIVERED', result IN ('not_verified', 'error'), 'UNDELIVERABLE', '') AS settle,
    multiIf(result = 'error', toString(error), result = 'not_verified', 'not_verified', '') AS code
SELECT
    toDate(started_at) AS day,
    attempt_uuid AS otp_id,
    'SILENT' AS channel,
    toString(profile_id) AS profile_id,
    started_at AS first_at,
    [(started_at, toUInt8(0), 'DISPATCHED', '', toUInt8(0), toUInt8(0)),
     (finished_at, toUInt8(if(settle = '', 1, 2)), if(settle = '', upper(toString(result)), settle), code, toUInt8(unknown_result), toUInt8(0))] AS events
FROM {{table "silent_auth_outcomes"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "channel_events_push_mv"}} {{onCluster}}
TO {{table "channel_events"}} AS
WITH
    multiIf(status = 'approved', 'DELIVERED', status = 'denied', 'UNDELIVERABLE', status = 'expired', 'TIMED_OUT', '') AS settle
SELECT
    toDate(created_at) AS day,
    attempt_uuid AS otp_id,
    'PUSH' AS channel,
    '' AS profile_id,
    created_at AS first_at,
    arrayFilter(e -> e.3 != 'PENDING',
        [(created_at, toUInt8(0), 'DISPATCHED', '', toUInt8(0), toUInt8(0)),
         (updated_at, toUInt8(if(settle = '', 1, 2)), if(settle = '', upper(toString(status)), settle),
          if(status IN ('denied', 'expired'), toString(status), ''), toUInt8(unknown_status), toUInt8(source = 'poll'))]) AS events
FROM {{table "push_events"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "journey_links_silent_mv"}} {{onCluster}}
TO {{table "journey_links"}} AS
SELECT attempt_uuid AS otp_id, correlation_id AS journey_id, 'silent' AS source, started_at AS linked_at, event_id
FROM {{table "silent_auth_outcomes"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{table "journey_links_push_mv"}} {{onCluster}}
TO {{table "journey_links"}} AS
SELECT attempt_uuid AS otp_id, correlation_id AS journey_id, 'push' AS source, created_at AS linked_at, event_id
FROM {{table "push_events"}};
