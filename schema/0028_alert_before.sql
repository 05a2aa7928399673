-- A firing alert's figure in the window before its own (the alert's
-- `before`: as long as its window, ending where it starts), so that the
-- alerts listed by the API, the console and the reports say it as the
-- published alert does. NULL before_from: none (a resolution, a window
-- before that could not be read, or an alert stored before this
-- migration); before_value NULL within one: nothing to judge there. On a
-- cluster the Distributed table gets the columns too.
ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS before_from Nullable(DateTime64(3, 'UTC')) AFTER since;

ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS before_to Nullable(DateTime64(3, 'UTC')) AFTER before_from;

ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS before_value Nullable(Float64) AFTER before_to;

ALTER TABLE {{table "alerts"}} {{onCluster}} ADD COLUMN IF NOT EXISTS before_volume UInt64 DEFAULT 0 AFTER before_value;

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS before_from Nullable(DateTime64(3, 'UTC')) AFTER since"}}

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS before_to Nullable(DateTime64(3, 'UTC')) AFTER before_from"}}

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS before_value Nullable(Float64) AFTER before_to"}}

{{alterDistributed "alerts" "ADD COLUMN IF NOT EXISTS before_volume UInt64 DEFAULT 0 AFTER before_value"}}
