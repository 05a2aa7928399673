package reporter

import (
	"context"
	"log/slog"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
)

// Reports lease: with several reporter replicas (or all-in-ones on one NATS),
// one replica runs the schedules, so each summary and alert goes out once.
const (
	BucketLeader = "otpscope_reporter_leader"
	leaderKey    = "reports"
	leaderTTL    = 15 * time.Second
)

// RunReportsLeased runs r's schedules while this replica holds the reports
// lease, until ctx ends.
func RunReportsLeased(ctx context.Context, b *broker.Broker, r *Reports, logger *slog.Logger) error {
	lease, err := b.NewLease(ctx, BucketLeader, "otpscope reporter: the replica that runs reports and alerts", leaderKey, broker.ReplicaName(), leaderTTL, logger)
	if err != nil {
		return err
	}
	lease.Holding = func(held bool) {
		if held {
			r.leader.Set(1)
		} else {
			r.leader.Set(0)
		}
	}
	return lease.Run(ctx, r.Run)
}
