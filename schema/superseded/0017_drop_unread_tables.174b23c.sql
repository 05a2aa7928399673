-- Tables nothing reads or writes any more go, with what they hold: the
-- daily rollups of 0003 and 0005, replaced by the hourly rollups (0008) and
-- the day-level histograms (0013), and the per-(OTP, channel) attempts of
-- 0002, not fed since 0007 (attempts are dispatches, read from
-- channel_events). Under the default retention (forever) they would keep
-- their rows for good. On a cluster the Distributed table goes first, then
-- the *_local one on every node; on one node the second statement of each
-- pair finds nothing left.
DROP TABLE IF EXISTS rollup_days {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "rollup_days"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_channels {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_channels"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_journeys {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_journeys"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_conversion {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_conversion"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_latency {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_latency"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_latency_buckets {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_latency_buckets"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS rolled_days {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "rolled_days"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_attempts {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_attempts"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS daily_paths {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "daily_paths"}} {{onCluster}} SYNC;
DROP TABLE IF EXISTS attempts {{onCluster}} SYNC;
DROP TABLE IF EXISTS {{table "attempts"}} {{onCluster}} SYNC;
