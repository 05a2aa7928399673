package store

import (
	"context"
	"time"
)

// RolledHours is how many whole hours of w the readers take from the hourly
// aggregates, and how many partial hours from the stored rows.
func RolledHours(ctx context.Context, db *DB, w Window) (whole, partial int, err error) {
	p, ok, err := db.planWindow(ctx, w)
	if !ok {
		return 0, 0, err
	}
	for _, lw := range p.live {
		partial += len(lw.stored)
	}
	return len(p.hours), partial, nil
}

// SetRollupClock has RefreshRollups take its versions from now instead of the
// server's clock.
func SetRollupClock(db *DB, now func() time.Time) { db.rollupClock = now }
