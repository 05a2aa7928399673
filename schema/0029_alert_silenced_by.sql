-- The silence that covered an alert when it was evaluated (the alert's
-- `silenced_by`: the reporter's webhook did not post it), so that the
-- alerts listed by the API, the console and the reports say which pages
-- a silence held. Empty: none (or an alert stored before this
-- migration). On a cluster the Distributed table gets the column too.
ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS silenced_by String DEFAULT '' AFTER before_volume;

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS silenced_by String DEFAULT '' AFTER before_volume"}}
