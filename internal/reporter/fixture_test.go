package reporter_test

import (
	"testing"

	"github.com/otpscope/otpscope/internal/chdb/chdbtest"
	"github.com/otpscope/otpscope/internal/sink/sinktest"
)

func TestMain(m *testing.M) { chdbtest.Main(m) }

// fixture is the pipeline with the sink running.
type fixture = sinktest.Pipeline

func newFixture(t *testing.T) *fixture { return sinktest.Start(t) }
