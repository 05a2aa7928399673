-- Since attempts are dispatches (0005), every reader of "which days and OTPs
-- hold facts" uses channel_events; the 0002 view folded every insert into
-- `attempts` a second time for nobody. Stop it; the table keeps what it has
-- (and ages out under --retention-attempts).
DROP VIEW IF EXISTS {{table "attempts_mv"}} {{onCluster}};
