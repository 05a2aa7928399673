package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Visibility of inserts, and the rollups' slack.
//
// A dirty mark's inserted_at is stamped by a materialized view as its insert
// runs; the insert's rows become visible when it ends. A rollup version
// (the server's time when a run starts) stands for "every mark older than
// this was visible to the run". On a cluster that is only as true as
// RollupSlack is long (an insert runs on another node; replicas fetch parts
// late), so every comparison of a mark with a version allows for it. On a
// single ClickHouse server (the embedded engine or one external server,
// its tables plain MergeTrees: singleServer) the run makes it true
// instead: before it reads anything it waits until no insert into the
// database that started before its version is still running
// (system.processes). So the slack shrinks to settledSlack, and the OTPs a
// reader patches between runs are those of the last minute or so, not of
// the last six (bench/HISTORY.md, thirteenth session: a read of the last
// 24 h between runs at 111 M events took 0.5 s with 5 minutes of touched
// OTPs, 1.2 s with an hour's).
//
// The run sees the inserts made in the database's own context, as all of
// otpscope's are (the sink's batches show in system.processes as Insert
// queries of the database); an INSERT naming db.table from another
// database's context is not waited for. Versions written before a build
// with this wait are trusted alike: only a mark of an insert that was
// still invisible more than a second after its stamp, at such a run, would
// be missed.

// settledSlack is the slack on a single server, whose rollup runs wait for
// the inserts that started before their version: a margin for the
// millisecond stamps.
const settledSlack = time.Second

// settleWait bounds how long a run waits for the inserts that started
// before it. The sink gives an insert AckWait (60 s by default); an insert
// running longer than this (a backfill, a stuck one) makes the run fail,
// and the next one tries again.
var settleWait = 90 * time.Second

// rollupComment marks the rollup job's own statements (log_comment), which
// stamp no dirty marks and which a run does not wait for: another replica's
// run may be computing hours for minutes.
const rollupComment = "otpscope rollup job"

// singleServer reports whether the marks live in a plain MergeTree, i.e. on
// one server: replicated or shared engines (a managed service may replace
// MergeTree with them) let an insert land on a replica the run does not
// see, so they keep RollupSlack. When it cannot tell, it says no.
func (db *DB) singleServer(ctx context.Context) bool {
	var engine string
	err := db.conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'rollup_dirty'").Scan(&engine)
	if err != nil {
		db.logger.Warn("rollups: cannot tell whether ClickHouse is a single server; keeping the cluster's slack", "err", err)
		return false
	}
	return plainMergeTree(engine)
}

// plainMergeTree reports whether engine is a MergeTree of one server.
func plainMergeTree(engine string) bool {
	return strings.HasSuffix(engine, "MergeTree") && !strings.Contains(engine, "Replicated") && !strings.HasPrefix(engine, "Shared")
}

// slack is how much older than an hour's version (or check) a dirty mark
// must be to have been visible to the run that wrote it. RollupSlack, the
// cluster's, bounds it; tests lower RollupSlack to trust their inserts at
// once.
func (db *DB) slack() time.Duration {
	if db.settles {
		return min(RollupSlack, settledSlack)
	}
	return RollupSlack
}

// FollowingLag is the max_lag for a reader that reads the same window
// again every few seconds (the console), with the rollup job running at
// least every interval: the interval, a minute for a run (a single
// server's second of slack within it), and on a cluster the slack. Its
// answers are as fresh as the job's last run; a job running late makes
// them slower, never more behind than this.
func (db *DB) FollowingLag(interval time.Duration) time.Duration {
	lag := interval + time.Minute
	if !db.settles {
		lag += db.slack()
	}
	return lag
}

// awaitInserts waits until no insert into the database that started at or
// before version (ms, the server's clock) is still running, but the job's
// own statements, polling system.processes; it fails after settleWait.
func (db *DB) awaitInserts(ctx context.Context, version uint64) error {
	// elapsed ≥ now − version: started at or before version (5 ms of margin
	// for elapsed's rounding).
	q := fmt.Sprintf(`SELECT count() FROM system.processes
WHERE query_kind = 'Insert' AND current_database = currentDatabase() AND Settings['log_comment'] != '%s'
    AND elapsed >= (toUnixTimestamp64Milli(now64(3)) - %d) / 1000 - 0.005`, rollupComment, version)
	deadline := time.Now().Add(settleWait)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		var running uint64
		if err := db.conn.QueryRow(ctx, q).Scan(&running); err != nil {
			return fmt.Errorf("rollups: inserts under way: %w", err)
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rollups: %d inserts that started before this run still running after %v; the next run tries again", running, settleWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// jobContext marks ctx's statements as the rollup job's (rollupComment).
func jobContext(ctx context.Context) context.Context {
	return withSettings(ctx, clickhouse.Settings{"log_comment": rollupComment})
}
