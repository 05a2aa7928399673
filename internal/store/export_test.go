package store

import (
	"context"
	"time"
)

// RolledDays is how many days of w the readers take from the rollups.
func RolledDays(ctx context.Context, db *DB, w Window) (int, error) {
	p, ok, err := db.planWindow(ctx, w)
	if !ok {
		return 0, err
	}
	return len(p.days), nil
}

// SetRollupClock has RefreshRollups take its versions from now instead of the
// server's clock.
func SetRollupClock(db *DB, now func() time.Time) { db.rollupClock = now }
