package reporter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
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
	host, _ := os.Hostname()
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	holder := fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(suffix[:]))
	lease, err := b.NewLease(ctx, BucketLeader, "otpscope reporter: the replica that runs reports and alerts", leaderKey, holder, leaderTTL, logger)
	if err != nil {
		return err
	}
	return lease.Run(ctx, r.Run)
}
