-- The ingest endpoint that refused a request (events.DeadLetter.path:
-- /webhooks/tyntec, /silent-auth/outcomes, /webhooks/push): replay decodes
-- a dead letter's body as that endpoint does. Dead letters stored before
-- have none, and replay as webhooks, all they could be then. On a cluster
-- the Distributed table gets the column too, or inserts through it could
-- not name it.
ALTER TABLE {{table "dead_letters"}} {{onCluster}} ADD COLUMN IF NOT EXISTS path LowCardinality(String) DEFAULT '' AFTER content_type;

{{alterDistributed "dead_letters" "ADD COLUMN IF NOT EXISTS path LowCardinality(String) DEFAULT '' AFTER content_type"}}
