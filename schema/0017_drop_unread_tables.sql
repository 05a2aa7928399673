-- Tables nothing reads or writes any more go, with what they hold: the
-- daily rollups of 0003 and 0005, replaced by the hourly rollups (0008) and
-- the day-level histograms (0013), and the per-(OTP, channel) attempts of
-- 0002, not fed since 0007 (attempts are dispatches, read from
-- channel_events). Under the default retention (forever) they would keep
-- their rows for good. On a cluster the Distributed table goes first, then
-- the *_local one on every node (schema.drop).
{{drop "rollup_days"}}
{{drop "daily_channels"}}
{{drop "daily_journeys"}}
{{drop "daily_conversion"}}
{{drop "daily_latency"}}
{{drop "daily_latency_buckets"}}
{{drop "rolled_days"}}
{{drop "daily_attempts"}}
{{drop "daily_paths"}}
{{drop "attempts"}}
