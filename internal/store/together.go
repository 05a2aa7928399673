package store

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// together runs queries of one answer that do not depend on each other side
// by side, and returns the first error (the others' context then ends).
// Most of a rollup read's time is the engine analyzing and planning each
// query on one thread (35–40 ms a query over the attempts' split, with
// chDB 26.7, whatever its data), so on the embedded engine's readers
// (chdb.DefaultOwnerReaders) or a ClickHouse server two queries take about
// the time of the longer. Callers guard what the functions share.
func together(ctx context.Context, fns ...func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, f := range fns {
		g.Go(func() error { return f(gctx) })
	}
	return g.Wait()
}
