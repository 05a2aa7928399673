package sink

import (
	"context"
	"time"

	"github.com/otpscope/otpscope/internal/broker"
)

// Where a consumer created again resumes.
//
// The sink's durable consumer keeps its place in the stream. When it is
// gone — deleted by hand (`nats consumer rm`), a replicated consumer lost —
// the sink creates it again; from the stream's first message it would
// insert every event the stream holds again (facts stored twice collapse,
// but a week of stream is millions of inserts and every rolled-up hour to
// check). So every positionEvery the sink records in the store up to where
// it has stored the stream (Inserted: its consumer's acknowledgement
// floor, or a replay's when lower), and a consumer created again starts at
// the message after: what came after the record is inserted again, at
// most positionEvery of traffic. A stream created anew is another
// (stream, created) and has no position: from its first message, as
// before. A position past the stream's end (a stream restored from an
// older snapshot) is not trusted (broker.ConsumerSpec.Resume).

// Positions is a store that keeps the sink's position in each stream:
// store.DB.
type Positions interface {
	RecordPosition(ctx context.Context, consumer, stream string, created time.Time, seq uint64) error
	Position(ctx context.Context, consumer, stream string, created time.Time) (uint64, error)
}

// positionEvery is how often the sink records its position.
var positionEvery = 30 * time.Second

// recordPositions records the sink's position every positionEvery until
// ctx ends, on a goroutine of its own: its NATS and ClickHouse round trips
// never hold up an insert.
func (c *Consumer) recordPositions(ctx context.Context, r Positions) {
	t := time.NewTicker(positionEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.recordPosition(ctx, r)
		}
	}
}

// recordPosition records the sink's position once. The stream is read
// before and after the position, which is recorded only when both are the
// same stream: a floor read from a stream created anew meanwhile must not
// pass for the new one's, or a consumer created again would skip its
// messages.
func (c *Consumer) recordPosition(ctx context.Context, r Positions) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name, created, err := c.stream(ctx)
	if err != nil {
		return
	}
	seq, err := c.Inserted(ctx)
	if err != nil || seq == 0 {
		return
	}
	if again, againCreated, err := c.stream(ctx); err != nil || again != name || !againCreated.Equal(created) {
		return
	}
	if err := r.RecordPosition(ctx, c.cfg.Durable, name, created, seq); err != nil {
		c.logger.Debug("the sink's position is not recorded", "err", err)
	}
}

// resume is where the sink's consumer starts when it is created: the
// message after the position recorded in this stream, or (0) the
// stream's first message when none was — a first start, a stream created
// anew, a store without positions.
func (c *Consumer) resume(ctx context.Context, s broker.StreamState) (uint64, error) {
	r, ok := c.db.(Positions)
	if !ok {
		return 0, nil
	}
	seq, err := r.Position(ctx, c.cfg.Durable, s.Name, s.Created.UTC().Truncate(time.Millisecond))
	if err != nil || seq == 0 {
		return 0, err
	}
	c.logger.Warn("the sink's consumer is missing: creating it again from the message after the position the sink recorded",
		"consumer", c.cfg.Durable, "from_seq", seq+1, "stream_last_seq", s.LastSeq)
	return seq + 1, nil
}
