-- A journey's time to deliver is known when a fact came before its first
-- DELIVERED, or a DISPATCHED at that same instant: tyntec's times may be
-- whole seconds (the seeds' examples are), and a DISPATCHED and DELIVERED
-- within one second then carry one time — a 0 ms delivery, not a lost
-- DISPATCHED. j_timed keeps that per stored journey: 1 known, 2 not, 0 a
-- row rolled up before this migration, read by the rule of its day (known
-- when a fact came strictly before).
ALTER TABLE {{table "hour_journeys"}} {{onCluster}} ADD COLUMN IF NOT EXISTS j_timed UInt8 DEFAULT 0 AFTER j_delivered;

{{alterDistributed "hour_journeys" "ADD COLUMN IF NOT EXISTS j_timed UInt8 DEFAULT 0 AFTER j_delivered"}}

-- The definitions an hour was summed under: 0 before this migration, 1
-- since. A 0 ms time to deliver in an hour of definition 0 is a journey
-- whose first known fact was its DELIVERED, which builds before the
-- known-start rule counted; the rollup job sums such hours again from their
-- stored rows (store.redefineHours).
ALTER TABLE {{table "rolled_hours"}} {{onCluster}} ADD COLUMN IF NOT EXISTS definition UInt8 DEFAULT 0 AFTER computed_at;

{{alterDistributed "rolled_hours" "ADD COLUMN IF NOT EXISTS definition UInt8 DEFAULT 0 AFTER computed_at"}}
